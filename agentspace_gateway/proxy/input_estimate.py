"""The input side of a proxied request, estimated for its budget reservation.

Every string of the body is counted (system, tools, messages, tool input and results), not
the JSON around it. Base64 payloads tokenise into nonsense, so they are priced by rule: an
image (OpenAI's image parts too) at Anthropic's most for one image (larger ones are scaled
down to fit it), a document at a token per 4 characters of its base64 (a PDF page is 1,500
to 3,000 tokens, its base64 commonly more than 4 times that). The measured ratio of actual
to estimated input and a margin are applied on top by the budget check.
"""

from __future__ import annotations

from typing import Any

from agentspace_gateway.tokens import TokenEstimator

# Anthropic: an image of up to 1.15 megapixels is about 1,600 tokens, and a larger one is
# scaled down to that size first.
IMAGE_TOKENS = 1600
_BASE64_CHARS_PER_TOKEN = 4


def _walk(value: Any, texts: list[str]) -> int:
    """Collect ``value``'s strings into ``texts``; returns the tokens priced by rule."""
    if isinstance(value, str):
        texts.append(value)
        return 0
    if isinstance(value, list):
        return sum(_walk(item, texts) for item in value)
    if not isinstance(value, dict):
        return 0
    if value.get("type") == "image_url":  # OpenAI's image part (a URL or a data URL)
        return IMAGE_TOKENS
    ruled = 0
    source = value.get("source")
    if isinstance(source, dict) and source.get("type") == "base64":
        data = source.get("data")
        if value.get("type") == "image":
            ruled += IMAGE_TOKENS
        elif isinstance(data, str):
            ruled += len(data) // _BASE64_CHARS_PER_TOKEN + 1
        value = {k: v for k, v in value.items() if k != "source"}
    return ruled + sum(_walk(item, texts) for item in value.values())


async def estimate_input(estimator: TokenEstimator, body: dict[str, Any]) -> int:
    texts: list[str] = []
    ruled = _walk({k: body.get(k) for k in ("system", "tools", "messages")}, texts)
    return ruled + await estimator.count_async("\n".join(texts))
