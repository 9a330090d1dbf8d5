"""The chat room for the running gateway: built at startup, closed with the app."""

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.chat.context_assembly import ContextAssembler
from agentspace_gateway.chat.services import ChatServices
from agentspace_gateway.chat.streams import ChatStreams, StopReason
from agentspace_gateway.chat.upstreams import ChatUpstreams
from agentspace_gateway.gateway.keys import SHUTDOWN
from agentspace_gateway.llm.client import AnthropicClients
from agentspace_gateway.llm.openai_client import OpenAIClients
from agentspace_gateway.llm.retries import RetryPolicy
from agentspace_gateway.metering import Metering
from agentspace_gateway.providers import Providers
from agentspace_gateway.providers.keys import ProviderKeys
from agentspace_gateway.providers.prices import price_overrides, provider_price_book
from agentspace_gateway.providers.upstream_http import UPSTREAM_HTTP
from agentspace_gateway.storage import ReplyRecorder
from agentspace_gateway.tokens import TokenEstimator

CHAT = web.AppKey("chat", ChatServices)


async def chat_context(app: web.Application) -> AsyncIterator[None]:
    config = app[appkeys.CONFIG]
    estimator = TokenEstimator()
    # Loading the encoding reads and checks a 1.7 MB file: not on the event loop.
    await asyncio.to_thread(estimator.load)
    providers = Providers.of(config)
    price_book = provider_price_book(price_overrides(config), providers)
    # The first look-up reads genai-prices' snapshot (tens of ms): not on the event loop.
    await asyncio.to_thread(price_book.prices_for, config.gateway.default_model)
    keys = app[appkeys.VAULT].keys
    # The app's one pool to the providers (its setup runs before this one's).
    pool = app[UPSTREAM_HTTP]
    clients = AnthropicClients(keys, config.anthropic, session=pool)
    upstreams = ChatUpstreams(
        providers,
        clients,
        OpenAIClients(ProviderKeys(keys), session=pool),
        max_tokens=config.anthropic.max_tokens,
        retries=RetryPolicy(
            max_retries=config.anthropic.max_retries,
            max_wait_seconds=config.anthropic.max_retry_wait_seconds,
            timeout_seconds=config.anthropic.timeout_seconds,
        ),
    )
    streams = ChatStreams()
    shutdown = app[SHUTDOWN]
    # Running streams end first at shutdown (their replies stored, their clients told),
    # then the gateway closes the sockets.
    shutdown.before_closing(lambda within: streams.stop_all(StopReason.SHUTDOWN, within))
    app[CHAT] = ChatServices(
        clients=clients,
        upstreams=upstreams,
        assembler=ContextAssembler(
            app[appkeys.MESSAGES],
            estimator,
            system_prompt=config.context.system_prompt,
            history_messages=config.context.history_messages,
        ),
        estimator=estimator,
        price_book=price_book,
        metering=Metering(
            app[appkeys.USAGE_LEDGER], price_book, ReplyRecorder(app[appkeys.DATABASE]), estimator
        ),
        messages=app[appkeys.MESSAGES],
        streams=streams,
        shutdown=shutdown,
        max_tokens=config.anthropic.max_tokens,
    )
    try:
        yield
    finally:
        await clients.close()


def setup_chat(app: web.Application) -> None:
    app.cleanup_ctx.append(chat_context)
