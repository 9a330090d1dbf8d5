"""Anthropic's own HTTP API on the gateway's app and port: a metered, forwarding door.

Tools that honour ``ANTHROPIC_BASE_URL`` (Claude Code, the ``anthropic`` SDKs) present a
gateway client key; the gateway forwards their requests with the provider key, relays the
reply byte for byte, and bills it into the same ledger and sessions as WebSocket chat.
"""
