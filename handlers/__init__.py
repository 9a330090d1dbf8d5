"""Built-in WebSocket message handlers, installed as ``agentspace_gateway.handlers``."""
