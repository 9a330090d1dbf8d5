"""The providers the gateway can hold an API key for. This tuple is the only list of them."""

import re

from agentspace_gateway.vault.errors import UnknownProviderError

PROVIDERS: tuple[str, ...] = ("anthropic", "openai", "ollama")

# People sometimes paste the key where the provider name goes (`keys add sk-ant-...`).
# Only echo a name back when it looks like a name, so such a key never reaches a message.
_ECHOABLE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,15}")


def check_provider(name: str) -> str:
    """Return the canonical provider name, or raise UnknownProviderError naming the valid ones."""
    canonical = name.strip().lower()
    if canonical in PROVIDERS:
        return canonical
    valid = ", ".join(PROVIDERS)
    if _ECHOABLE_NAME.fullmatch(canonical):
        raise UnknownProviderError(f'Unknown provider "{canonical}". Valid providers: {valid}.')
    raise UnknownProviderError(
        "Unknown provider: the name given does not look like a provider name "
        f"(was the key passed in its place?). Valid providers: {valid}."
    )
