"""An OpenAI chat completions request in Anthropic's Messages shape, field by field.

Translated: ``messages`` (system and developer messages into ``system``; user and assistant
text; images as ``image_url`` parts, data URLs or http(s) URLs; assistant ``tool_calls``;
``tool`` messages as ``tool_result``), ``tools`` (functions), ``tool_choice``,
``max_tokens``/``max_completion_tokens``, ``temperature``, ``top_p``, ``stop``, ``stream``,
``stream_options``, ``user`` (as ``metadata.user_id``). Anything else is refused with a 400
naming the field (``TranslationError``): never silently dropped.
"""

import json
import re
from collections.abc import Mapping
from typing import Any

DEFAULT_MAX_TOKENS = 4096
_DATA_URL = re.compile(r"data:(image/[a-z+.-]+);base64,(.*)", re.DOTALL)
_IGNORED_NULLS = frozenset({"n", "logprobs", "presence_penalty", "frequency_penalty"})
_KNOWN = frozenset(
    {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "stream_options",
        "user",
    }
)


class TranslationError(ValueError):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def _unsupported(param: str, why: str = "") -> TranslationError:
    return TranslationError(
        param,
        f"{param} cannot be translated to Anthropic's API{why}; leave it out, or use "
        "POST /v1/messages for Anthropic models.",
    )


def to_anthropic(body: Mapping[str, Any], model: str, max_tokens: int) -> dict[str, Any]:
    for name, value in body.items():
        if name in _KNOWN:
            continue
        # What OpenAI's clients send with its default value asks for nothing different.
        if name in _IGNORED_NULLS and value in (None, 1, 0, False):
            continue
        raise _unsupported(name)
    system, messages = _messages(body.get("messages"))
    params: dict[str, Any] = {"model": model, "messages": messages}
    if system:
        params["system"] = "\n\n".join(system)
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is None:
        limit = max_tokens
    if type(limit) is not int or limit < 1:
        raise TranslationError("max_tokens", "max_tokens must be a positive integer.")
    params["max_tokens"] = limit
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise TranslationError(name, f"{name} must be a number.")
            if name == "temperature" and value > 1:
                raise _unsupported(name, " above 1 (Anthropic's range is 0 to 1)")
            params[name] = value
    stop = body.get("stop")
    if stop is not None:
        params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if isinstance(body.get("user"), str):
        params["metadata"] = {"user_id": body["user"]}
    if body.get("tools"):
        params["tools"] = [_tool(tool, i) for i, tool in enumerate(body["tools"])]
    choice = body.get("tool_choice")
    if choice is not None:
        params["tool_choice"] = _tool_choice(choice)
    return params


def _tool(tool: Any, index: int) -> dict[str, Any]:
    if not isinstance(tool, Mapping) or tool.get("type") != "function":
        raise _unsupported(f"tools[{index}]", " (only function tools are)")
    function = tool.get("function") or {}
    return {
        "name": function.get("name"),
        "description": function.get("description", ""),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }


def _tool_choice(choice: Any) -> dict[str, Any]:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    raise _unsupported("tool_choice")


def _messages(raw: Any) -> tuple[list[str], list[dict[str, Any]]]:
    if not isinstance(raw, list) or not raw:
        raise TranslationError("messages", "messages must be a non-empty array.")
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise TranslationError(where, f"{where} must be an object.")
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text_only(message.get("content"), where))
            continue
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": _text_only(message.get("content"), where),
            }
            _append(messages, "user", [block])
            continue
        if role not in ("user", "assistant"):
            raise _unsupported(f"{where}.role", f" ({role!r})")
        blocks = _content(message.get("content"), where)
        if role == "assistant":
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    raise TranslationError(
                        f"{where}.tool_calls", "tool call arguments must be JSON."
                    ) from None
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id"),
                        "name": function.get("name"),
                        "input": arguments,
                    }
                )
        _append(messages, role, blocks)
    return system, messages


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    # Anthropic wants turns to alternate: consecutive ones of a role (tool results) join.
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _text_only(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, Mapping) or part.get("type") != "text":
                raise _unsupported(f"{where}.content", " (only text parts are, here)")
            parts.append(str(part.get("text", "")))
        return "".join(parts)
    raise TranslationError(f"{where}.content", f"{where}.content must be text.")


def _content(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content", f"{where}.content must be text or parts.")
    blocks: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            data = _DATA_URL.fullmatch(url)
            if data:
                source = {"type": "base64", "media_type": data[1], "data": data[2]}
            elif url.startswith(("https://", "http://")):
                source = {"type": "url", "url": url}
            else:
                raise TranslationError(
                    f"{where}.content[{index}]", "image_url must be a data: or http(s) URL."
                )
            blocks.append({"type": "image", "source": source})
        else:
            raise _unsupported(f"{where}.content[{index}]", f" ({kind!r} parts are not)")
    return blocks
