"""The price book for every provider: Anthropic's ids as they were, ``provider/model`` ids
by that provider's prices (genai-prices under its id, or its one local price)."""

from collections.abc import Mapping
from decimal import Decimal

from agentspace_gateway.config import Config, PriceOverride
from agentspace_gateway.pricing import (
    UNKNOWN_MODEL,
    ModelPrices,
    PriceBook,
    local_prices,
    one_hour_write_rate,
)
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


def price_overrides(config: Config) -> dict[str, ModelPrices]:
    def exact(value: float | None) -> Decimal | None:
        # Through str: Decimal(0.3) would carry the float's binary error into every cost.
        return None if value is None else Decimal(str(value))

    def model_prices(model: str, prices: PriceOverride) -> ModelPrices:
        input_mtok = Decimal(str(prices.input))
        cache_write_mtok = exact(prices.cache_write)
        return ModelPrices(
            input_mtok=input_mtok,
            output_mtok=Decimal(str(prices.output)),
            cache_read_mtok=exact(prices.cache_read),
            cache_write_mtok=cache_write_mtok,
            cache_write_1h_mtok=one_hour_write_rate(
                input_mtok, cache_write_mtok, exact(prices.cache_write_1h)
            ),
            source=UNKNOWN_MODEL if model == UNKNOWN_MODEL else "config",
        )

    return {model: model_prices(model, prices) for model, prices in config.pricing.items()}
