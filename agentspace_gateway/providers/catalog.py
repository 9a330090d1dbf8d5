"""What models the configured providers serve, with prices: for ``agentspace-gateway models``
and ``GET /v1/models``.

Priced providers list the models genai-prices prices per token under their id (Anthropic's
bare, others as ``provider/model``); a local provider serves whatever its server has, so it
is listed as ``provider/*`` at its local price; every ``[models]`` alias is listed too.
"""

from attrs import frozen
from genai_prices.data_snapshot import get_snapshot

from agentspace_gateway.pricing import ModelPrices, PriceBook
from agentspace_gateway.protocol.errors import GatewayError
from agentspace_gateway.providers.registry import Provider, Providers

ANY_MODEL = "*"


@frozen
class ModelEntry:
    # The name a client sends.
    id: str
    provider: str
    prices: ModelPrices | None
    # For an alias, the provider/model it stands for.
    alias_of: str | None = None


def _listed_ids(provider: Provider) -> list[str]:
    found = next((p for p in get_snapshot().providers if p.id == provider.prices), None)
    if found is None:
        return []
    # Fine-tune prefixes ("ft:gpt-4o") and open-ended ones ("gpt-4o-mini-2024-07-18.ft-")
    # are match rules, not names a client could send.
    return sorted(m.id for m in found.models if ":" not in m.id and not m.id.endswith("-"))


def catalog(providers: Providers, book: PriceBook) -> list[ModelEntry]:
    entries: list[ModelEntry] = []
    for provider in providers.by_name.values():
        if provider.local:
            name = f"{provider.name}/{ANY_MODEL}"
            entries.append(ModelEntry(name, provider.name, book.prices_for(name)))
            continue
        for model in _listed_ids(provider):
            routed = model if provider.name == "anthropic" else f"{provider.name}/{model}"
            prices = book.prices_for(routed)
            if prices is not None:  # per-token models only (no image or audio-only ones)
                entries.append(ModelEntry(routed, provider.name, prices))
    for alias, target in sorted(providers.aliases.items()):
        try:
            route = providers.route(alias)
        except GatewayError:
            entries.append(ModelEntry(alias, "?", None, alias_of=target))
            continue
        entries.append(
            ModelEntry(
                alias, route.provider.name, book.prices_for(route.ledger_model), alias_of=target
            )
        )
    return entries
