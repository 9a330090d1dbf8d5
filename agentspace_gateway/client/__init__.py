"""A client of the gateway's WebSocket protocol, and the terminal commands built on it.

The submodules are imported where they are used: ``connection`` pulls in aiohttp, which a
command that never connects should not pay for at start-up.
"""
