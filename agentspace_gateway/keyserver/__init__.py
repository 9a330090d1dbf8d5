"""The key server: /health, and API keys from the vault to holders of the bearer token."""

from agentspace_gateway.keyserver.routes import setup_keyserver

__all__ = ["setup_keyserver"]
