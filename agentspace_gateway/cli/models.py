"""agentspace-gateway models [--provider NAME]: the providers, the models they serve, prices."""

import argparse
from typing import Any

from agentspace_gateway.cli.context import load
from agentspace_gateway.pricing import ModelPrices
from agentspace_gateway.providers import Providers
from agentspace_gateway.providers.catalog import catalog
from agentspace_gateway.providers.prices import price_overrides, provider_price_book


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "models", help="list the providers, the models they serve and their prices"
    )
    parser.add_argument("--provider", help="only this provider's models")
    parser.set_defaults(run=run)


def _price(prices: ModelPrices | None) -> str:
    if prices is None:
        return "unpriced"
    cached = "" if prices.cache_read_mtok is None else f", cached ${prices.cache_read_mtok}"
    text = f"${prices.input_mtok} in, ${prices.output_mtok} out{cached} per MTok"
    return f"local ({text})" if prices.source == "local" else text


def run(args: argparse.Namespace) -> int:
    _, config = load(args)
    providers = Providers.of(config)
    book = provider_price_book(price_overrides(config), providers)
    print("providers:")
    for provider in providers.by_name.values():
        key = " or ".join(provider.key_sources) or "none (keyless)"
        print(f"  {provider.name:<12} {provider.kind:<9} {provider.base_url}  key: {key}")
    print("models:")
    for entry in catalog(providers, book):
        if args.provider and entry.provider != args.provider:
            continue
        alias = f" -> {entry.alias_of}" if entry.alias_of else ""
        print(f"  {entry.id}{alias}  {_price(entry.prices)}")
    return 0
