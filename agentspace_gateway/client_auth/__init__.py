"""Client keys at every door: who a request or connection belongs to, and where it is billed.

The Anthropic API door (proxy/), the OpenAI API door (openai_api/) and the WebSocket
(gateway/) all check a client key here, count wrong ones in the same limiter, audit each use
and refusal the same way, and attribute the sessions a client opens to its key.
"""

from aiohttp import web

from agentspace_gateway.client_auth.keys import ClientAuth

CLIENT_AUTH = web.AppKey("client_auth", ClientAuth)

__all__ = ["CLIENT_AUTH", "ClientAuth"]
