"""Field checks shared by message classes, each declared once for the decoder and the schema.

A check is an object (or, for a converter, a function listed in ``CONVERTER_FACETS``) that
both refuses a bad value, reported against its field, and states the same rule as JSON
Schema keywords, so ``protocol --json-schema`` publishes exactly what the decoder enforces.
The patterns are written in the subset of regular expressions that ECMA-262 (what JSON
Schema names) and Python's ``re`` read alike, and the checks below use them verbatim.
"""

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from attrs import frozen

from agentspace_gateway.strict_converter import FieldValueError

JsonSchema = dict[str, Any]

# Field metadata keys read by protocol/schema.py.
DESCRIPTION = "description"
SCHEMA = "json_schema"


def about(description: str, **schema: Any) -> dict[str, Any]:
    """Field metadata: the description the schema publishes, and any keywords that say more
    about a value the gateway writes (a server field is never decoded, so has no check)."""
    metadata: dict[str, Any] = {DESCRIPTION: description}
    if schema:
        metadata[SCHEMA] = schema
    return metadata


# Exactly the characters str.isspace() calls white space (so str.strip() removes them),
# spelled out because \s means a different set in ECMA-262 than in Python.
_WHITE_SPACE = (
    "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
NOT_BLANK = f"[^{_WHITE_SPACE}]"
_NOT_BLANK = re.compile(NOT_BLANK)


def whole(pattern: str) -> str:
    """Anchor a pattern to the whole string in both dialects: Python's ``$`` also matches
    before a final newline, ECMA-262's does not, and the look-ahead refuses that newline."""
    return f"^(?:{pattern})$(?!\\n)"


@frozen
class Text:
    """A string of 1 to ``max_length`` characters, not only white space."""

    max_length: int

    def __call__(self, _: Any, attribute: "attrs.Attribute[Any]", value: str | None) -> None:
        if value is None:  # an optional field left out, or sent as null
            return
        if not _NOT_BLANK.search(value):
            raise FieldValueError(attribute.name, "must not be empty")
        if len(value) > self.max_length:
            raise FieldValueError(attribute.name, f"must be at most {self.max_length} characters")

    def json_schema_facet(self) -> JsonSchema:
        return {"minLength": 1, "maxLength": self.max_length, "pattern": NOT_BLANK}


@frozen
class IntRange:
    """An integer from ``low`` to ``high``, both included."""

    low: int
    high: int

    def __call__(self, _: Any, attribute: "attrs.Attribute[Any]", value: int | None) -> None:
        if value is not None and not self.low <= value <= self.high:
            raise FieldValueError(attribute.name, f"must be from {self.low} to {self.high}")

    def json_schema_facet(self) -> JsonSchema:
        return {"minimum": self.low, "maximum": self.high}


def bounded_text(max_length: int) -> Text:
    return Text(max_length)


# Text handles None itself; the two names say at the field which one is meant.
optional_bounded_text = bounded_text


def int_between(low: int, high: int) -> IntRange:
    return IntRange(low, high)


@frozen
class Matching:
    """A string that matches ``pattern`` (anchored with ``whole``) whole."""

    pattern: str
    says: str

    def __call__(self, _: Any, attribute: "attrs.Attribute[Any]", value: str | None) -> None:
        if value is not None and not re.search(self.pattern, value):
            raise FieldValueError(attribute.name, self.says)

    def json_schema_facet(self) -> JsonSchema:
        return {"pattern": self.pattern}


# A caller's agent id, as the HTTP doors take one from Claude Code's x-claude-code-agent-id.
AGENT_ID = whole("[A-Za-z0-9._:@/+=-]{1,128}")
caller_agent_id = Matching(AGENT_ID, "must be 1 to 128 of A-Z a-z 0-9 . _ : @ / + = -")


# Model ids --------------------------------------------------------------------------------

# A slash names the provider: ollama/llama3.2 (docs/openai-and-local-models.md).
MODEL_ID = whole("[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}")
_MODEL_ID = re.compile(MODEL_ID)
# Anthropic's ids spell versions with hyphens (claude-sonnet-4-5); people often type dots.
_DOTTED_VERSION = re.compile(r"(?<=\d)\.(?=\d)")


def normalise_model(model: str) -> str:
    """claude-sonnet-4.5 -> claude-sonnet-4-5; anything not shaped like a model id is refused.

    Only Claude ids: other providers spell versions with dots themselves (gpt-4.1,
    ollama/llama3.2), so theirs are kept as written."""
    if not _MODEL_ID.search(model):
        raise FieldValueError(
            "model",
            "must be a model id such as claude-sonnet-4-5 or ollama/llama3.2 "
            "(letters, digits, . _ : / -)",
        )
    if not model.startswith("claude"):
        return model
    return _DOTTED_VERSION.sub("-", model)


def model_id(value: str | None) -> str | None:
    return None if value is None else normalise_model(value)


# Times ------------------------------------------------------------------------------------

# A Gregorian date from 0001-01-01 to 9999-12-31, day of month and leap years included, so a
# schema validator refuses 2026-02-30 just as the decoder does.
_DAY = (
    "(?!0000)[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    "|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29"
)
_CLOCK = "(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]{1,9})?)?"
_OFFSET = "Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]"
TIMESTAMP = whole(f"(?:{_DAY})(?:T{_CLOCK}(?:{_OFFSET})?)?")
_TIMESTAMP = re.compile(TIMESTAMP)
_FIRST, _LAST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


def timestamp(value: str | None, field_name: str) -> str | None:
    """ISO 8601 in, the ledger's own UTC form out, so text comparison orders by time."""
    if value is None:
        return None
    if not _TIMESTAMP.search(value):
        raise FieldValueError(field_name, "must be an ISO 8601 time such as 2026-11-28T09:00:00Z")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    offset = moment.utcoffset() or timedelta()
    # A time whose UTC form falls outside years 1 to 9999 (9999-12-31T23:00-05:00) selects
    # the same usage rows as the representable end it is past, so it is clamped to it.
    if offset < timedelta() and moment.replace(tzinfo=None) > datetime.max + offset:
        moment = _LAST
    elif offset > timedelta() and moment.replace(tzinfo=None) < datetime.min + offset:
        moment = _FIRST
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def since_timestamp(value: str | None) -> str | None:
    return timestamp(value, "since")


def until_timestamp(value: str | None) -> str | None:
    return timestamp(value, "until")


_TIMESTAMP_FACET: JsonSchema = {
    "pattern": TIMESTAMP,
    "examples": ["2026-11-28T09:00:00Z", "2026-11-28T10:00:00+01:00", "2026-11-28"],
}
# What each converter a message field may name accepts, as JSON Schema keywords. A function
# rather than an object with a facet, because mypy's attrs plugin takes only named functions
# as converters.
CONVERTER_FACETS: Mapping[Callable[[Any], Any], JsonSchema] = {
    model_id: {"pattern": MODEL_ID, "maxLength": 100},
    since_timestamp: _TIMESTAMP_FACET,
    until_timestamp: _TIMESTAMP_FACET,
}


def facet_of(check: Any) -> JsonSchema:
    """The JSON Schema keywords a validator or converter states; {} when it states none."""
    method = getattr(check, "json_schema_facet", None)
    if callable(method):
        facet: JsonSchema = method()
        return facet
    try:
        return dict(CONVERTER_FACETS.get(check, {}))
    except TypeError:  # an unhashable callable is nobody's converter here
        return {}
