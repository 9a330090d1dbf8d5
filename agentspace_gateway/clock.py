"""Timestamps as the database stores them: ISO 8601 UTC with milliseconds, sortable as text."""

from datetime import UTC, datetime


def utc_now_iso() -> str:
    return format_utc(datetime.now(UTC))


def format_utc(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )
