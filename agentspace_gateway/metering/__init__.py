"""Billing: one component owns a billed request from its first upstream byte to settlement.

Every door (the WebSocket chat today, HTTP APIs tomorrow) feeds it provider-neutral events,
so no door can count or price tokens its own way.
"""

from agentspace_gateway.metering.billed_request import BilledRequest, Settlement
from agentspace_gateway.metering.events import (
    Failed,
    Stopped,
    StreamEvent,
    TextStreamed,
    UsageReported,
)
from agentspace_gateway.metering.meter import Metering

__all__ = [
    "BilledRequest",
    "Failed",
    "Metering",
    "Settlement",
    "Stopped",
    "StreamEvent",
    "TextStreamed",
    "UsageReported",
]
