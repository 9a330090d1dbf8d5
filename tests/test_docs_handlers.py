"""The handler lists in the README and docs/plugins.md are the ones the gateway registers.

The built-in handlers are read through the registry's own loading function, as the gateway
loads them, and told from plugins by where their code lives; every list the docs give (the
sentence naming the built-ins, the ``/health`` examples) must match.
"""

import re
from pathlib import Path

import pytest

from agentspace_gateway.handler_registry import load_registry

DOCS = Path(__file__).resolve().parent.parent
BUILT_INS_SENTENCE = re.compile(r"built-in handlers \(((?:`[^`]+`,?\s*)+)\)")
HEALTH_EXAMPLE = re.compile(r'"handlers": \[([^\]]*)\]')
# The example plugin the /health example in docs/plugins.md shows installed.
EXAMPLE_PLUGIN = "echo"


def built_in_handlers() -> list[str]:
    registry = load_registry()
    return sorted(
        tag
        for tag, registration in registry.by_type.items()
        if registration.handler.function.__module__.startswith("agentspace_gateway.")
    )


def named_in(text: str) -> list[str]:
    return re.findall(r'[`"]([^`"]+)[`"]', text)


@pytest.mark.parametrize("document", ["README.md", "docs/plugins.md"])
def test_the_documented_built_in_handlers_are_the_registered_ones(document: str) -> None:
    text = (DOCS / document).read_text(encoding="utf-8")
    built_ins = built_in_handlers()
    assert "chat.send" in built_ins  # the registry did load them

    sentences = [sorted(named_in(found)) for found in BUILT_INS_SENTENCE.findall(text)]
    examples = [named_in(found) for found in HEALTH_EXAMPLE.findall(text)]
    assert sentences, f"{document} no longer names the built-in handlers"
    assert examples, f"{document} no longer shows /health"
    for listed in sentences:
        assert listed == built_ins
    for listed in examples:
        assert listed == sorted(listed)  # /health sorts them
        assert [tag for tag in listed if tag != EXAMPLE_PLUGIN] == built_ins
