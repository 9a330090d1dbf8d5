"""Audit-log event names for client keys (their use, refusal, issue and revocation)."""

from enum import StrEnum


class ClientEvent(StrEnum):
    ADD = "client.add"
    REVOKE = "client.revoke"
    USE = "client.use"
    REFUSED = "client.refused"
    # An open stream closed because its client key was revoked (or expired) meanwhile.
    STREAM_CLOSED = "client.stream_closed"
