"""Which upstream a chat.send goes to: the model is routed to its provider
(``providers``), whose key or client is made ready before anything is sent, and the
assembled context is put in that provider's request shape.

Both kinds yield the same metering events, so ``ChatStream`` reads one stream whichever
provider it came from; both are retried the same way (``llm/retries.py``).
"""

from collections.abc import AsyncGenerator, Callable
from typing import Any

from attrs import frozen

from agentspace_gateway.chat.context_assembly import AssembledContext
from agentspace_gateway.llm.anthropic_stream import anthropic_events
from agentspace_gateway.llm.client import AnthropicClients
from agentspace_gateway.llm.openai_client import OpenAIClients
from agentspace_gateway.llm.openai_stream import openai_events
from agentspace_gateway.llm.retries import RetryPolicy, with_retries
from agentspace_gateway.metering.events import StreamEvent
from agentspace_gateway.providers import Providers, Route

# The assembled context and the max_tokens to send (a budget may have lowered the default).
Events = Callable[[AssembledContext, int], AsyncGenerator[StreamEvent, None]]
OPENAI_URL = "https://api.openai.com/v1"


@frozen
class Upstream:
    route: Route
    events: Events


class ChatUpstreams:
    def __init__(
        self,
        providers: Providers,
        anthropic: AnthropicClients,
        openai: OpenAIClients,
        *,
        max_tokens: int,
        retries: RetryPolicy,
    ) -> None:
        self.providers = providers
        self._anthropic = anthropic
        self.openai = openai
        self._max_tokens = max_tokens
        self._retries = retries

    async def open(self, model: str) -> Upstream:
        """Route ``model`` and get its key; UNKNOWN_PROVIDER or NO_API_KEY when it cannot go."""
        route = self.providers.route(model)
        retries = self._retries
        if route.provider.kind == "anthropic":
            target = await self._anthropic.messages_target()

            def anthropic(
                assembled: AssembledContext, max_tokens: int
            ) -> AsyncGenerator[StreamEvent, None]:
                params = {
                    "model": assembled.model,
                    "max_tokens": max_tokens,
                    "system": assembled.system_prompt,
                    "messages": assembled.messages,
                }
                return with_retries(lambda: anthropic_events(target, params), retries)

            return Upstream(route, anthropic)
        provider = route.provider
        key = await self.openai.key(provider)
        session = self.openai.session
        # OpenAI's own API refuses max_tokens for its reasoning models and takes
        # max_completion_tokens for all; compatible servers (Ollama, llama.cpp, vLLM) know
        # max_tokens for certain.
        limit = "max_completion_tokens" if provider.base_url == OPENAI_URL else "max_tokens"

        def openai(
            assembled: AssembledContext, max_tokens: int
        ) -> AsyncGenerator[StreamEvent, None]:
            body: dict[str, Any] = {
                "model": assembled.model,
                "messages": [
                    {"role": "system", "content": assembled.system_prompt},
                    *assembled.messages,
                ],
                limit: max_tokens,
            }
            name, url = provider.name, provider.base_url
            return with_retries(
                lambda: openai_events(session, url, key, body, provider=name), retries
            )

        return Upstream(route, openai)
