"""What a request costs, in integer nano-dollars, priced from genai-prices' bundled table.

Money never becomes a float until it leaves for the wire. Prices are Decimals in USD per
million tokens, so one token costs price * 1000 nano-dollars: an exact integer for any price
with at most three decimals, which covers every Anthropic list price. Costs therefore add up
exactly, however many tiny ones a session collects.

Cache writes come in two lifetimes: five minutes (1.25x the input price) and one hour (2x).
The one-hour part is kept as a subset of the flat figure, as Anthropic reports it
(``cache_creation_input_tokens`` is the sum; ``cache_creation`` breaks it down), so every
total that already added the flat figure stays right.

Only ids genai-prices lists, and their dated snapshots, are priced (``known_models``): its
prefix matching would price an invented ``claude-opus-4-60`` as Opus 4.6.

Only genai-prices' bundled data snapshot is read. Its network updater (`UpdatePrices`) runs
only when someone starts it, and nothing here does.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from types import MappingProxyType
from typing import Any

import attrs
from genai_prices import Usage, calc_price
from genai_prices.types import ModelInfo, TieredPrices

from agentspace_gateway.known_models import is_listed_id

NANOUSD_PER_USD = 10**9

# USD per MTok * tokens / 10^6 = price * tokens * 10^3 nano-dollars.
_NANOUSD_PER_TOKEN_AT_1_USD_PER_MTOK = Decimal(1000)

# Wide enough that no product of a token count and a price is ever rounded implicitly: the
# only rounding is the explicit one to whole nano-dollars in `_nanousd`.
_EXACT = Context(prec=100, rounding=ROUND_HALF_UP)

# Request model ids are client-supplied, so the lookup cache must not grow without bound.
_MAX_CACHED_MODELS = 256

_DATE_SUFFIX = re.compile(r"-\d{8}$")

_NO_OVERRIDES: Mapping[str, ModelPrices] = MappingProxyType({})

# The key of the configured price for models nobody knows (`[pricing.unknown_model]`), and
# the source such a price is marked with, on every row and reply it priced.
UNKNOWN_MODEL = "unknown_model"

# Anthropic's published cache-write multipliers of the input price: 5 minutes and 1 hour.
_FIVE_MINUTE_WRITE = Decimal("1.25")
_ONE_HOUR_WRITE = Decimal(2)


def _price_validator(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.name.startswith("cache_"):
        return
    if isinstance(value, Decimal) and value.is_finite() and value >= 0:
        return
    raise ValueError(
        f"Price {attribute.name} must be a non-negative Decimal in USD per million tokens "
        f"(for example Decimal('3.75')), got {value!r}."
    )


@attrs.frozen
class ModelPrices:
    """USD per million tokens for one request, with any long-context tier already applied.

    A cache price of None means the price table does not know it: a request that used that
    kind of token cannot be priced, because guessing would show a wrong figure as if exact.
    """

    input_mtok: Decimal = attrs.field(validator=_price_validator)
    output_mtok: Decimal = attrs.field(validator=_price_validator)
    cache_read_mtok: Decimal | None = attrs.field(validator=_price_validator)
    # Five-minute cache writes.
    cache_write_mtok: Decimal | None = attrs.field(validator=_price_validator)
    source: str  # "genai-prices", "config", "unknown_model" or "local"
    # One-hour cache writes; see `one_hour_write_rate` for when it is derived.
    cache_write_1h_mtok: Decimal | None = attrs.field(
        default=None, kw_only=True, validator=_price_validator
    )

    def as_json(self) -> str:
        """The prices as stored with a ledger row: exact decimal text, never floats."""
        return _prices_json(self)


# Every ledger row stores its prices, and a gateway prices few models: each is encoded once
# (the encoding was 2% of the gateway's time per proxied request at 50 in flight).
@functools.lru_cache(maxsize=256)
def _prices_json(prices: ModelPrices) -> str:
    return json.dumps(
        {
            "inputPerMTok": _text(prices.input_mtok),
            "outputPerMTok": _text(prices.output_mtok),
            "cacheReadPerMTok": _text(prices.cache_read_mtok),
            "cacheWritePerMTok": _text(prices.cache_write_mtok),
            "cacheWrite1hPerMTok": _text(prices.cache_write_1h_mtok),
            "source": prices.source,
        }
    )


LOCAL = "local"


def local_prices(input_mtok: Decimal, output_mtok: Decimal) -> ModelPrices:
    """A local server's one configured price (default zero), its cached input at the input
    price: shown as "local", never as unpriced."""
    return ModelPrices(
        input_mtok=input_mtok,
        output_mtok=output_mtok,
        cache_read_mtok=input_mtok,
        cache_write_mtok=input_mtok,
        cache_write_1h_mtok=input_mtok,
        source=LOCAL,
    )


def one_hour_write_rate(
    input_mtok: Decimal, cache_write_mtok: Decimal | None, listed: Decimal | None
) -> Decimal | None:
    """The one-hour write price: as listed, else derived where it is certain, else None.

    Anthropic publishes one-hour writes at 2x the input price for every model with prompt
    caching, and five-minute writes at 1.25x. So a table (or a configured price) that gives
    the five-minute rate at exactly 1.25x input follows that rule, and its one-hour rate is
    2x input (above a long-context threshold too, since `input_mtok` is already tiered). A
    table that breaks the 1.25x rule says nothing certain about the 2x one: a one-hour write
    there stays unpriced rather than shown as an exact figure that may be wrong.
    """
    if listed is not None:
        return listed
    if cache_write_mtok is not None and cache_write_mtok == input_mtok * _FIVE_MINUTE_WRITE:
        return input_mtok * _ONE_HOUR_WRITE
    return None


def _count_validator(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"Token count {attribute.name} must be a non-negative int, got {value!r}.")


@attrs.frozen
class TokenCounts:
    """Token usage as Anthropic reports it: `input_tokens` excludes cache reads and writes."""

    input_tokens: int = attrs.field(validator=_count_validator)
    output_tokens: int = attrs.field(validator=_count_validator)
    # Every cache write, five-minute and one-hour alike (Anthropic's flat figure).
    cache_creation_input_tokens: int = attrs.field(default=0, validator=_count_validator)
    cache_read_input_tokens: int = attrs.field(default=0, validator=_count_validator)
    # The one-hour part of cache_creation_input_tokens (a subset, never added to it).
    cache_creation_1h_input_tokens: int = attrs.field(default=0, validator=_count_validator)

    def __attrs_post_init__(self) -> None:
        if self.cache_creation_1h_input_tokens > self.cache_creation_input_tokens:
            raise ValueError(
                "cache_creation_1h_input_tokens is part of cache_creation_input_tokens and "
                f"cannot exceed it: {self.cache_creation_1h_input_tokens} > "
                f"{self.cache_creation_input_tokens}."
            )

    @property
    def cache_creation_5m_input_tokens(self) -> int:
        return self.cache_creation_input_tokens - self.cache_creation_1h_input_tokens

    @property
    def total_input(self) -> int:
        """Every input-side token; this is the figure long-context tiers are decided on."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    @property
    def total(self) -> int:
        return self.total_input + self.output_tokens


@attrs.frozen
class Cost:
    """What one request cost, in nano-dollars (10^-9 USD); all zeros when it could not be priced."""

    priced: bool
    prices: ModelPrices | None
    input_nanousd: int
    output_nanousd: int
    # Every cache write, five-minute and one-hour: components still add up to the total.
    cache_write_nanousd: int
    cache_read_nanousd: int
    # The one-hour part of cache_write_nanousd.
    cache_write_1h_nanousd: int = 0

    @classmethod
    def unpriced(cls) -> Cost:
        return cls(False, None, 0, 0, 0, 0)

    @property
    def cache_write_5m_nanousd(self) -> int:
        return self.cache_write_nanousd - self.cache_write_1h_nanousd

    def prices_json(self) -> str | None:
        """The prices this cost was computed with, as stored with its ledger row."""
        return None if self.prices is None else self.prices.as_json()

    @property
    def input_side_nanousd(self) -> int:
        return self.input_nanousd + self.cache_write_nanousd + self.cache_read_nanousd

    @property
    def total_nanousd(self) -> int:
        return self.input_side_nanousd + self.output_nanousd


class PriceBook:
    """Prices per model: configured overrides first, then genai-prices' bundled table, then
    the configured price for unknown models, if any.

    An override applies when its key equals the requested model id, that id without a
    trailing -YYYYMMDD date, or the id genai-prices resolves it to; so an override keyed
    `claude-sonnet-4-5` also prices `claude-sonnet-4-5-20250929`. The override keyed
    `unknown_model` is not a model's: it prices every id neither the overrides nor
    genai-prices know, and is marked with the source "unknown_model".
    """

    def __init__(
        self,
        overrides: Mapping[str, ModelPrices] = _NO_OVERRIDES,
        *,
        provider_id: str = "anthropic",
        providers: Mapping[str, PriceBook | ModelPrices] | None = None,
    ) -> None:
        self._overrides = dict(overrides)
        # Ledger ids "provider/model": priced by that provider's book (genai-prices under
        # its id), or at one flat price for every model of a local provider.
        self._providers = dict(providers or {})
        fallback = self._overrides.pop(UNKNOWN_MODEL, None)
        self._unknown_model = (
            None if fallback is None else attrs.evolve(fallback, source=UNKNOWN_MODEL)
        )
        self._provider_id = provider_id
        self._models: dict[str, ModelInfo | None] = {}
        self._models_lock = threading.Lock()

    def prices_for(
        self, model: str, total_input_tokens: int = 0, *, at: datetime | None = None
    ) -> ModelPrices | None:
        """Effective prices for a request with this many input-side tokens; None if unknown.

        `at` is when the request was made (default now): genai-prices dates price changes.
        """
        for key in (model, _DATE_SUFFIX.sub("", model)):
            if (override := self._overrides.get(key)) is not None:
                return override
        provider, slash, provider_model = model.partition("/")
        if slash and (route := self._providers.get(provider)) is not None:
            if isinstance(route, ModelPrices):
                return route
            routed = route.prices_for(provider_model, total_input_tokens, at=at)
            return self._unknown_model if routed is None else routed
        info = self._model_info(model)
        if info is None:
            return self._unknown_model
        if (override := self._overrides.get(info.id)) is not None:
            return override
        # Resolved per request, not cached: a model's prices can change on a given date.
        table = info.get_prices(at or datetime.now(UTC))
        input_mtok = _effective(table.input_mtok, total_input_tokens)
        output_mtok = _effective(table.output_mtok, total_input_tokens)
        if input_mtok is None or output_mtok is None:
            return None  # not priced per token (an image or per-request model, say)
        cache_write_mtok = _effective(table.cache_write_mtok, total_input_tokens)
        # ModelPrice holds only the prices a model has: a missing one is no attribute at all.
        listed_1h = _effective(getattr(table, "cache_write_1h_mtok", None), total_input_tokens)
        return ModelPrices(
            input_mtok=input_mtok,
            output_mtok=output_mtok,
            cache_read_mtok=_effective(table.cache_read_mtok, total_input_tokens),
            cache_write_mtok=cache_write_mtok,
            cache_write_1h_mtok=one_hour_write_rate(input_mtok, cache_write_mtok, listed_1h),
            source="genai-prices",
        )

    def cost(self, model: str, counts: TokenCounts, *, at: datetime | None = None) -> Cost:
        prices = self.prices_for(model, counts.total_input, at=at)
        if prices is None:
            return Cost.unpriced()
        write_5m = _nanousd(counts.cache_creation_5m_input_tokens, prices.cache_write_mtok)
        write_1h = _nanousd(counts.cache_creation_1h_input_tokens, prices.cache_write_1h_mtok)
        cache_read = _nanousd(counts.cache_read_input_tokens, prices.cache_read_mtok)
        if write_5m is None or write_1h is None or cache_read is None:
            return Cost.unpriced()
        return Cost(
            priced=True,
            prices=prices,
            input_nanousd=_nanousd_known(counts.input_tokens, prices.input_mtok),
            output_nanousd=_nanousd_known(counts.output_tokens, prices.output_mtok),
            cache_write_nanousd=write_5m + write_1h,
            cache_read_nanousd=cache_read,
            cache_write_1h_nanousd=write_1h,
        )

    def estimate_input_nanousd(self, model: str, tokens: int) -> int | None:
        """What sending this many uncached input tokens would cost, or None if unknown.

        The tokens decide the tier, so a prompt past a long-context threshold is estimated at
        the price Anthropic will actually charge for it.
        """
        prices = self.prices_for(model, tokens)
        return None if prices is None else _nanousd_known(tokens, prices.input_mtok)

    def _model_info(self, model: str) -> ModelInfo | None:
        try:
            return self._models[model]
        except KeyError:
            pass
        try:
            # calc_price on empty usage is genai-prices' public way to resolve a model id
            # (dated ids included); the lookup scans the provider's match rules, hence the cache.
            info: ModelInfo | None = calc_price(
                Usage(input_tokens=0, output_tokens=0), model, provider_id=self._provider_id
            ).model
        except LookupError:
            info = None
        if info is not None and not is_listed_id(info, model):
            info = None  # matched only by a prefix: an invented id, not this model
        with self._models_lock:
            if len(self._models) >= _MAX_CACHED_MODELS:
                self._models.pop(next(iter(self._models)))
            self._models[model] = info
        return info


def _effective(price: Decimal | TieredPrices | None, total_input_tokens: int) -> Decimal | None:
    """The price that applies to every token of the request (tiers are cliffs, not brackets)."""
    if not isinstance(price, TieredPrices):
        return price
    effective = price.base
    for tier in price.tiers:  # sorted by start, ascending
        if total_input_tokens > tier.start:
            effective = tier.price
    return effective


def _nanousd(tokens: int, price_mtok: Decimal | None) -> int | None:
    """None when tokens were used whose price is unknown; zero tokens cost nothing regardless."""
    if tokens == 0:
        return 0
    if price_mtok is None:
        return None
    return _nanousd_known(tokens, price_mtok)


def _nanousd_known(tokens: int, price_mtok: Decimal) -> int:
    per_token = _EXACT.multiply(price_mtok, _NANOUSD_PER_TOKEN_AT_1_USD_PER_MTOK)
    exact = _EXACT.multiply(Decimal(tokens), per_token)
    # Exact already for prices of up to three decimals; finer ones round half up, per component.
    return int(exact.to_integral_value(rounding=ROUND_HALF_UP))


def usd(nanousd: int) -> float:
    """Dollars for the wire; the float is the nearest one to the exact amount."""
    return float(_EXACT.divide(Decimal(nanousd), Decimal(NANOUSD_PER_USD)))


def usd_text(nanousd: int) -> str:
    """Exact dollars as text, without trailing zeros: 300 -> "0.0000003"."""
    sign = "-" if nanousd < 0 else ""
    whole, fraction = divmod(abs(nanousd), NANOUSD_PER_USD)
    if fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:09d}".rstrip("0")


def _text(value: object) -> str | None:
    return None if value is None else str(value)
