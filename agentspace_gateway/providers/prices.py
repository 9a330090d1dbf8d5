"""The price book for every provider: Anthropic's ids as they were, ``provider/model`` ids
by that provider's prices (genai-prices under its id, or its one local price)."""

from collections.abc import Mapping

from agentspace_gateway.pricing import ModelPrices, PriceBook, local_prices
from agentspace_gateway.providers.registry import ANTHROPIC, Providers


def provider_price_book(overrides: Mapping[str, ModelPrices], providers: Providers) -> PriceBook:
    routes: dict[str, PriceBook | ModelPrices] = {}
    for provider in providers.by_name.values():
        if provider.name == ANTHROPIC:
            continue  # its ids are recorded bare, and priced by the book itself
        if provider.local:
            routes[provider.name] = local_prices(
                provider.local_input_mtok, provider.local_output_mtok
            )
        else:
            routes[provider.name] = PriceBook(provider_id=provider.prices)
    return PriceBook(overrides, providers=routes)
