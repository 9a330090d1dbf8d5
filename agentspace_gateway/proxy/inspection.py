"""What a proxied request carried, section by section, for ``context.inspect``.

The latest kept body of the session is split the way a person reads a Claude Code request:
each system block, each tool definition, then the messages by role and kind (text, tool
use, tool results, thinking, images). Each section has its bytes, a tiktoken estimate and
the estimate's price; beside them the tokens Anthropic reported for that very request.
"""

from __future__ import annotations

import json
from typing import Any

from attrs import frozen

from agentspace_gateway.pricing import PriceBook, usd
from agentspace_gateway.protocol.messages import ContextInspection, ContextSection, ContextTotals
from agentspace_gateway.proxy.kept_requests import KeptRequests
from agentspace_gateway.storage.session_origins import SessionOrigins
from agentspace_gateway.tokens import TokenEstimator

# A section's content is shown up to this many characters; its bytes and tokens are always
# measured whole.
SHOWN_CHARS = 64 * 1024
# Measured without their payload: base64 tokenises into nonsense counts.
_BINARY_KINDS = frozenset({"image", "document"})


@frozen
class Part:
    name: str
    text: str  # what is measured
    byte_count: int


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _block_text(block: Any) -> tuple[str, str]:
    """(kind, measured text) of one content block."""
    if isinstance(block, str):
        return "text", block
    if not isinstance(block, dict):
        return "other", _dump(block)
    kind = str(block.get("type", "other"))
    if kind == "text":
        return kind, str(block.get("text", ""))
    if kind in ("thinking", "redacted_thinking"):
        return kind, str(block.get("thinking") or block.get("data") or "")
    if kind == "tool_use":
        return kind, _dump(block.get("input"))
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return kind, "\n".join(_block_text(item)[1] for item in content)
        return kind, content if isinstance(content, str) else _dump(content)
    if kind in _BINARY_KINDS:
        source = {k: v for k, v in (block.get("source") or {}).items() if k != "data"}
        return kind, _dump({**block, "source": source})
    return kind, _dump(block)


def parts_of(body: dict[str, Any]) -> list[Part]:
    parts: list[Part] = []
    system = body.get("system")
    blocks = [system] if isinstance(system, str) else system if isinstance(system, list) else []
    for index, block in enumerate(blocks):
        _, text = _block_text(block)
        parts.append(Part(f"system[{index}]", text, len(_dump(block).encode())))
    for tool in body.get("tools") or []:
        name = tool.get("name", "?") if isinstance(tool, dict) else "?"
        text = _dump(tool)
        parts.append(Part(f"tool:{name}", text, len(text.encode())))
    grouped: dict[str, tuple[list[str], int]] = {}
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        role = str(message.get("role", "?"))
        content = message.get("content")
        for block in content if isinstance(content, list) else [content]:
            kind, text = _block_text(block)
            texts, size = grouped.setdefault(f"messages.{role}.{kind}", ([], 0))
            texts.append(text)
            grouped[f"messages.{role}.{kind}"] = (texts, size + len(_dump(block).encode()))
    for name, (texts, size) in grouped.items():
        parts.append(Part(name, "\n".join(texts), size))
    return parts


class ProxiedInspector:
    def __init__(
        self,
        kept: KeptRequests,
        origins: SessionOrigins,
        estimator: TokenEstimator,
        prices: PriceBook,
    ) -> None:
        self._kept = kept
        self._origins = origins
        self._estimator = estimator
        self._prices = prices

    async def inspect(self, request_id: str, session_id: str) -> ContextInspection | None:
        """The session's latest kept request, measured; None when none is kept."""
        latest = await self._kept.latest(session_id)
        if not latest:
            return None
        proxied_request_id, raw = latest[-1]
        try:
            body = json.loads(raw)
        except ValueError:
            return None
        model = str(body.get("model", ""))
        parts = parts_of(body)
        tokens = await self._estimator.count_many_async(part.text for part in parts)

        def nanos(count: int) -> int:
            return self._prices.estimate_input_nanousd(model, count) or 0

        total_tokens = sum(tokens)
        reported = await self._origins.reported_input_tokens(proxied_request_id)
        return ContextInspection(
            request_id=request_id,
            session_id=session_id,
            model=model,
            sections=[
                ContextSection(
                    name=part.name,
                    content=part.text[:SHOWN_CHARS],
                    byte_count=part.byte_count,
                    token_estimate=count,
                    cost_estimate=usd(nanos(count)),
                    cost_estimate_nanos=nanos(count),
                )
                for part, count in zip(parts, tokens, strict=True)
            ],
            totals=ContextTotals(
                byte_count=len(raw),
                token_estimate=total_tokens,
                cost_estimate=usd(nanos(total_tokens)),
                cost_estimate_nanos=nanos(total_tokens),
            ),
            estimate_ratio=None if not reported or not total_tokens else reported / total_tokens,
            exact_input_tokens=reported,
        )
