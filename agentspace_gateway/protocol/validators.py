"""Field checks shared by message classes; each problem is reported against its field."""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs

from agentspace_gateway.clock import format_utc
from agentspace_gateway.strict_converter import FieldValueError

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]

_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
# Anthropic's ids spell versions with hyphens (claude-sonnet-4-5); people often type dots.
_DOTTED_VERSION = re.compile(r"(?<=\d)\.(?=\d)")


def bounded_text(max_length: int) -> Validator:
    def check(_: Any, attribute: "attrs.Attribute[Any]", value: str) -> None:
        if not value.strip():
            raise FieldValueError(attribute.name, "must not be empty")
        if len(value) > max_length:
            raise FieldValueError(attribute.name, f"must be at most {max_length} characters")

    return check


def optional_bounded_text(max_length: int) -> Validator:
    inner = bounded_text(max_length)

    def check(instance: Any, attribute: "attrs.Attribute[Any]", value: str | None) -> None:
        if value is not None:
            inner(instance, attribute, value)

    return check


def normalise_model(model: str) -> str:
    """claude-sonnet-4.5 -> claude-sonnet-4-5; anything not shaped like a model id is refused."""
    if not _MODEL_ID.fullmatch(model):
        raise FieldValueError(
            "model", "must be a model id such as claude-sonnet-4-5 (letters, digits, . _ : -)"
        )
    return _DOTTED_VERSION.sub("-", model)


def model_id(value: str | None) -> str | None:
    return None if value is None else normalise_model(value)


def timestamp(value: str | None, field_name: str) -> str | None:
    """ISO 8601 in, the ledger's own UTC form out, so text comparison orders by time."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FieldValueError(
            field_name, "must be an ISO 8601 time such as 2026-11-28T09:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return format_utc(moment)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last representable UTC time
        raise FieldValueError(
            field_name, "must be a time between years 1 and 9999 in UTC"
        ) from None


def since_timestamp(value: str | None) -> str | None:
    return timestamp(value, "since")


def until_timestamp(value: str | None) -> str | None:
    return timestamp(value, "until")


def int_between(low: int, high: int) -> Validator:
    def check(_: Any, attribute: "attrs.Attribute[Any]", value: int | None) -> None:
        if value is not None and not low <= value <= high:
            raise FieldValueError(attribute.name, f"must be from {low} to {high}")

    return check
