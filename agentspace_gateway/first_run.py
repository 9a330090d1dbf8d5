"""What a person without a provider key is told to do, worded once for every place that says it:
the ``NO_API_KEY`` error, ``/health``, the console, the terminal client and ``serve``'s log.

The step has to work from where they are. With a vault, ``keys add`` is right: the running
gateway reads the vault again within a second. Without one (no OS keychain, no passphrase)
``keys add`` fails, so the hint offers the two ways that do work, both needing a restart
because the gateway reads its environment once: the key in the gateway's environment, or a
passphrase (then ``keys add``).
"""

import asyncio
import logging
import os
from collections.abc import Mapping

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.vault import PASSPHRASE_ENV, PROVIDERS, VaultError

log = logging.getLogger(__name__)

# The provider chat goes through; its key is the one a first run needs.
CHAT_PROVIDER = "anthropic"
# Only these keys are also read from the gateway's environment (llm/client.py reads this one).
ENVIRONMENT_KEYS: Mapping[str, str] = {"anthropic": "ANTHROPIC_API_KEY"}
_DISPLAY_NAMES = {"anthropic": "Anthropic", "openai": "OpenAI", "ollama": "Ollama"}

VAULT = "vault"
ENVIRONMENT = "environment"


def no_key_message(provider: str, *, vault_available: bool) -> str:
    """The whole message for a missing key: what is wrong, then the step that fixes it."""
    name = _DISPLAY_NAMES.get(provider, provider)
    if vault_available:
        return f"{name} API key not configured. Run: agentspace-gateway keys add {provider}"
    return (
        f"{name} API key not configured, and the gateway has no vault to keep one in "
        f"(no OS keychain, and {PASSPHRASE_ENV} is not set). {_without_vault(provider)}"
    )


def _without_vault(provider: str) -> str:
    vault_step = (
        f"set {PASSPHRASE_ENV} to a long passphrase, run: agentspace-gateway keys add "
        f"{provider}, then restart agentspace-gateway serve with {PASSPHRASE_ENV} still set"
    )
    variable = ENVIRONMENT_KEYS.get(provider)
    if variable is None:
        return vault_step[0].upper() + vault_step[1:] + "."
    return (
        f"Either restart the gateway with the key in its environment: {variable}=… "
        f"agentspace-gateway serve, or {vault_step}."
    )


def environment_key_present(provider: str, environ: Mapping[str, str]) -> bool:
    variable = ENVIRONMENT_KEYS.get(provider)
    return variable is not None and bool(environ.get(variable, "").strip())


async def key_sources(
    state: appkeys.VaultState, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], str | None]:
    """Where each provider's key would come from (the vault first, as chat reads it), and
    the vault's problem if reading it failed. Only names and sources: never a key."""
    environ = os.environ if environ is None else environ
    stored: list[str] = []
    problem = None
    if state.keys is not None:
        try:
            stored = await asyncio.to_thread(state.keys.vault.stored_providers)
        except VaultError as error:
            problem = str(error)
    sources = {}
    for provider in PROVIDERS:
        if provider in stored:
            sources[provider] = VAULT
        elif environment_key_present(provider, environ):
            sources[provider] = ENVIRONMENT
    return sources, problem


def key_hint(state: appkeys.VaultState, sources: Mapping[str, str]) -> str | None:
    """What to do before chat can work, or None when it has a key."""
    if CHAT_PROVIDER in sources:
        return None
    return no_key_message(CHAT_PROVIDER, vault_available=state.available)


async def announce_key_state(app: web.Application) -> None:
    """At startup, say in the log where chat's key comes from, or what to do without one."""
    state = app[appkeys.VAULT]
    sources, problem = await key_sources(state)
    if problem is not None:
        log.warning("the vault could not be read: %s", problem)
    source = sources.get(CHAT_PROVIDER)
    if source is not None:
        log.info("%s key: from the %s", CHAT_PROVIDER, source)
        return
    hint = key_hint(state, sources)
    log.warning("chat will answer NO_API_KEY until a key is set. %s", hint)


def setup_first_run(app: web.Application) -> None:
    # After setup_vault: its cleanup_ctx has opened the vault before on_startup runs.
    app.on_startup.append(announce_key_state)
