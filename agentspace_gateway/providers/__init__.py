"""Named upstreams (Anthropic, OpenAI, any OpenAI-compatible server) and the routing of a
model name to one of them."""

from agentspace_gateway.providers.registry import (
    ANTHROPIC,
    Provider,
    Providers,
    Route,
    model_not_served,
)

__all__ = ["ANTHROPIC", "Provider", "Providers", "Route", "model_not_served"]
