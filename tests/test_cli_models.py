"""agentspace-gateway models: providers, models and prices, aliases and local ones included."""

import pytest

from agentspace_gateway.cli import main
from agentspace_gateway.home import Home


def test_models_lists_providers_prices_aliases_and_local_models(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text(
        '[providers.lab]\nkind = "openai"\nbase_url = "http://127.0.0.1:8000/v1"\n'
        'key = "none"\nlocal_input = 0.5\n[models]\nfast = "ollama/llama3.2"\n'
        'smart = "openai/gpt-4.1"\n'
    )
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "  ollama       openai    http://127.0.0.1:11434/v1  key: none (keyless)" in out
    assert "  lab          openai    http://127.0.0.1:8000/v1  key: none (keyless)" in out
    assert "  openai/gpt-4.1  $2 in, $8 out, cached $0.5 per MTok" in out
    assert "  claude-sonnet-4-5  $3 in, $15 out, cached $0.3 per MTok" in out
    assert "  ollama/*  local ($0 in, $0 out, cached $0 per MTok)" in out
    assert "  lab/*  local ($0.5 in, $0 out, cached $0.5 per MTok)" in out
    assert "  fast -> ollama/llama3.2  local ($0 in, $0 out" in out
    assert "  smart -> openai/gpt-4.1  $2 in, $8 out" in out
    assert "unpriced" not in out


def test_models_for_one_provider(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--provider", "ollama"]) == 0
    listed = capsys.readouterr().out.split("models:\n")[1].split()
    assert listed[0] == "ollama/*"
    assert "claude-sonnet-4-5" not in listed
