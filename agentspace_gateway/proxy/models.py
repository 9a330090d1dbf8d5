"""``GET /v1/models``: the models the gateway can price, in Anthropic's list shape.

Answered from genai-prices' bundled table and the configured prices, without a trip
upstream: a client probing models at start-up should not wait on the network. The table
carries no release dates, so ``created_at`` is the Unix epoch for every model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web
from genai_prices import data_snapshot

from agentspace_gateway.pricing import PriceBook
from agentspace_gateway.proxy.errors import anthropic_error, invalid_request

UNKNOWN_RELEASE = "1970-01-01T00:00:00Z"
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


def priced_models(prices: PriceBook, configured: Iterable[str]) -> list[dict[str, Any]]:
    """Every model with a known per-token price, configured ones included, newest id first."""
    names: dict[str, str] = {}
    for provider in data_snapshot.get_snapshot().providers:
        if provider.id == "anthropic":
            for model in provider.models:
                names[model.id] = model.name or model.id
    for model_id in configured:
        names.setdefault(model_id, model_id)
    return [
        {
            "type": "model",
            "id": model_id,
            "display_name": names[model_id],
            "created_at": UNKNOWN_RELEASE,
        }
        for model_id in sorted(names, reverse=True)
        if prices.prices_for(model_id) is not None
    ]


def model_page(models: list[dict[str, Any]], query: Any) -> web.Response:
    try:
        limit = int(query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        return invalid_request("limit: Input should be a valid integer")
    if not 1 <= limit <= MAX_LIMIT:
        return invalid_request(f"limit: Input should be between 1 and {MAX_LIMIT}")
    ids = [model["id"] for model in models]
    after, before = query.get("after_id"), query.get("before_id")
    start, end = 0, len(models)
    for name, value in (("after_id", after), ("before_id", before)):
        if value is not None and value not in ids:
            return anthropic_error(404, "not_found_error", f"{name}: no model {value!r}")
    if before is not None:
        end = ids.index(before)
        start = max(0, end - limit)
    elif after is not None:
        start = ids.index(after) + 1
        end = min(len(models), start + limit)
    else:
        end = min(len(models), limit)
    page = models[start:end]
    has_more = start > 0 if before is not None else end < len(models)
    return web.json_response(
        {
            "data": page,
            "has_more": has_more,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }
    )


def one_model(models: list[dict[str, Any]], model_id: str) -> web.Response:
    for model in models:
        if model["id"] == model_id:
            return web.json_response(model)
    return anthropic_error(404, "not_found_error", f"model: {model_id}")
