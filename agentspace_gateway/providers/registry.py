"""Which provider serves a model name, from the built-in providers and ``[providers.NAME]``.

A name routes by, in order: an alias in ``[models]`` (``fast = "ollama/llama3.2"``), an
explicit ``provider/model`` (split at the first slash, so ``openrouter/meta-llama/x`` keeps
its own slashes), and a bare Claude id, which goes to Anthropic as it always has. Anything
else is refused with the providers there are and how to add one: sending ``gpt-4o`` to
Anthropic and recording it "unpriced" is what this replaced.

The ledger records a routed request under ``Route.ledger_model``: a Claude id as it was,
any other model as ``provider/model``, so the price book (and a reader of the ledger) knows
whose model it was.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Literal

from attrs import frozen

from agentspace_gateway.config import Config, ProviderConfig
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError

ANTHROPIC = "anthropic"
LOCAL = "local"

ProviderKind = Literal["anthropic", "openai"]


@frozen
class Provider:
    name: str
    kind: ProviderKind
    base_url: str
    # Tried in order: "vault:NAME", "env:VARIABLE"; () for a keyless server.
    key_sources: tuple[str, ...]
    # "local", or the genai-prices provider id its models are priced under.
    prices: str
    local_input_mtok: Decimal = Decimal(0)
    local_output_mtok: Decimal = Decimal(0)

    @property
    def local(self) -> bool:
        return self.prices == LOCAL

    @property
    def keyless(self) -> bool:
        return not self.key_sources


BUILT_IN = (
    Provider(
        ANTHROPIC,
        "anthropic",
        "https://api.anthropic.com",
        ("vault:anthropic", "env:ANTHROPIC_API_KEY"),
        "anthropic",
    ),
    Provider(
        "openai",
        "openai",
        "https://api.openai.com/v1",
        ("vault:openai", "env:OPENAI_API_KEY"),
        "openai",
    ),
    Provider("ollama", "openai", "http://127.0.0.1:11434/v1", (), LOCAL),
)


@frozen
class Route:
    provider: Provider
    # The id the provider knows the model by.
    model: str

    @property
    def ledger_model(self) -> str:
        if self.provider.name == ANTHROPIC:
            return self.model
        return f"{self.provider.name}/{self.model}"


def from_config(name: str, config: ProviderConfig) -> Provider:
    keyless = config.key == "none"
    return Provider(
        name=name,
        kind=config.kind,
        base_url=config.base_url.rstrip("/"),
        key_sources=() if keyless else (config.key,),
        prices=config.prices or (LOCAL if keyless else name),
        local_input_mtok=_usd(config.local_input),
        local_output_mtok=_usd(config.local_output),
    )


def _usd(value: float) -> Decimal:
    # Through str: Decimal(0.3) would carry the float's binary error into every cost.
    exact = Decimal(str(value))
    # 0.0 and 2.0 as 0 and 2, as genai-prices writes them; normalize() alone makes 1E+1 of 10.
    return exact.quantize(Decimal(1)) if exact == exact.to_integral_value() else exact.normalize()


class Providers:
    """The configured providers and model aliases; routes a model name to one of them."""

    def __init__(
        self,
        providers: Mapping[str, Provider] | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.by_name: dict[str, Provider] = {p.name: p for p in BUILT_IN}
        self.by_name.update(providers or {})
        self.aliases = dict(aliases or {})

    @classmethod
    def of(cls, config: Config) -> "Providers":
        return cls(
            {name: from_config(name, entry) for name, entry in config.providers.items()},
            config.models,
        )

    def route(self, model: str) -> Route:
        target = self.aliases.get(model, model)
        name, slash, upstream = target.partition("/")
        if slash:
            provider = self.by_name.get(name)
            if provider is not None and upstream:
                return Route(provider, upstream)
        elif target.startswith("claude"):
            return Route(self.by_name[ANTHROPIC], target)
        raise model_not_served(model, sorted(self.by_name))


def model_not_served(model: str, providers: list[str]) -> GatewayError:
    return GatewayError(
        ErrorCode.UNKNOWN_PROVIDER,
        f"No provider serves the model {model!r}. Name it with its provider, as "
        f"PROVIDER/MODEL (providers: {', '.join(providers)}; e.g. ollama/llama3.2), give it "
        'an alias in config.toml under [models] (fast = "ollama/llama3.2"), or add a '
        'provider there: [providers.NAME] kind = "openai", base_url = "http://host:8000/v1", '
        'key = "none". See docs/openai-and-local-models.md.',
    )
