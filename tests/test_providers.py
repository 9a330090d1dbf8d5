"""Providers from config, the routing of model names, and their prices."""

from decimal import Decimal
from pathlib import Path

import pytest

from agentspace_gateway.config_loading import ConfigError, load_config
from agentspace_gateway.pricing import TokenCounts
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError
from agentspace_gateway.providers import Providers
from agentspace_gateway.providers.keys import ProviderKeys
from agentspace_gateway.providers.prices import provider_price_book


def providers_from(tmp_path: Path, toml: str) -> Providers:
    path = tmp_path / "config.toml"
    path.write_text(toml)
    return Providers.of(load_config(path, environ={}))


def test_the_built_in_providers_route_explicit_names_and_claude_ids() -> None:
    providers = Providers()
    assert sorted(providers.by_name) == ["anthropic", "ollama", "openai"]
    route = providers.route("ollama/llama3.2:1b")
    assert (route.provider.name, route.model, route.ledger_model) == (
        "ollama",
        "llama3.2:1b",
        "ollama/llama3.2:1b",
    )
    assert route.provider.base_url == "http://127.0.0.1:11434/v1"
    assert route.provider.keyless
    assert route.provider.local
    claude = providers.route("claude-sonnet-4-5")
    assert (claude.provider.name, claude.ledger_model) == ("anthropic", "claude-sonnet-4-5")
    openai = providers.route("openai/gpt-4.1")
    assert openai.provider.key_sources == ("vault:openai", "env:OPENAI_API_KEY")
    assert openai.ledger_model == "openai/gpt-4.1"


@pytest.mark.parametrize("model", ["gpt-4o", "nobody/gpt-4o", "openai/", "llama3.2"])
def test_a_model_no_provider_serves_is_a_clear_error(model: str) -> None:
    with pytest.raises(GatewayError) as raised:
        Providers().route(model)
    assert raised.value.code == ErrorCode.UNKNOWN_PROVIDER
    message = raised.value.message
    assert repr(model) in message
    assert "anthropic, ollama, openai" in message
    assert "[providers.NAME]" in message
    assert "[models]" in message


def test_config_adds_providers_and_aliases(tmp_path: Path) -> None:
    providers = providers_from(
        tmp_path,
        """
[providers.vllm]
kind = "openai"
base_url = "http://127.0.0.1:8000/v1/"
key = "env:VLLM_KEY"
[providers.ollama]
kind = "openai"
base_url = "http://10.0.0.2:11434/v1"
local_input = 0.1
[models]
fast = "ollama/llama3.2"
big = "vllm/meta-llama/Llama-3.1-70B"
""",
    )
    assert providers.route("fast").ledger_model == "ollama/llama3.2"
    big = providers.route("big")
    assert (big.provider.name, big.model) == ("vllm", "meta-llama/Llama-3.1-70B")
    assert big.provider.base_url == "http://127.0.0.1:8000/v1"
    assert big.provider.key_sources == ("env:VLLM_KEY",)
    assert big.provider.prices == "vllm"  # keyed: genai-prices under its own name
    ollama = providers.by_name["ollama"]
    assert ollama.base_url == "http://10.0.0.2:11434/v1"
    assert ollama.local
    assert ollama.local_input_mtok == Decimal("0.1")


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ('kind = "gemini"\nbase_url = "http://x/v1"', "providers.x.kind"),
        ('kind = "openai"\nbase_url = "ftp://x"', "must be an http(s) URL"),
        ('kind = "openai"\nbase_url = "http://x/v1"\nkey = "sk-123"', 'must be "vault:NAME"'),
        ('kind = "openai"\nbase_url = "http://x/v1"\nkey = "vault:x"', "use env:VARIABLE"),
        ('kind = "openai"\nbase_url = "http://x/v1"\nlocal_output = -1', "must not be negative"),
    ],
)
def test_bad_provider_entries_are_refused_with_their_key(
    tmp_path: Path, entry: str, complaint: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        providers_from(tmp_path, f"[providers.x]\n{entry}\n")
    assert complaint in str(raised.value)


def test_openai_models_are_priced_from_genai_prices_and_local_ones_as_local() -> None:
    book = provider_price_book({}, Providers())
    counts = TokenCounts(input_tokens=1000, output_tokens=100, cache_read_input_tokens=2000)
    cost = book.cost("openai/gpt-4.1", counts)
    # gpt-4.1: $2 input, $8 output, $0.5 cached input per MTok.
    assert cost.priced
    assert cost.prices is not None
    assert cost.prices.source == "genai-prices"
    assert (cost.input_nanousd, cost.cache_read_nanousd, cost.output_nanousd) == (
        2_000_000,
        1_000_000,
        800_000,
    )
    local = book.cost("ollama/llama3.2", counts)
    assert local.priced
    assert local.total_nanousd == 0
    assert local.prices is not None
    assert local.prices.source == "local"
    # Claude ids stay Anthropic's; an unknown OpenAI id is unpriced, not someone else's.
    assert book.cost("claude-sonnet-4-5", counts).priced
    assert not book.cost("openai/gpt-4.1-invented", counts).priced


async def test_keys_come_from_the_environment_and_a_missing_one_says_how_to_set_it() -> None:
    providers = Providers()
    keys = ProviderKeys(None, {"OPENAI_API_KEY": "sk-env"})
    assert await keys.key(providers.by_name["openai"]) == "sk-env"
    assert await keys.key(providers.by_name["ollama"]) is None
    with pytest.raises(GatewayError) as raised:
        await ProviderKeys(None, {}).key(providers.by_name["openai"])
    assert raised.value.code == ErrorCode.NO_API_KEY
    assert "keys add openai" in raised.value.message
