"""A clock that tests can step, for rows whose order depends on their timestamps."""

from datetime import UTC, datetime, timedelta

from agentspace_gateway.clock import format_utc


class SteppingClock:
    """Each reading is ``step`` (one millisecond unless changed) after the last."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
        self.step = timedelta(milliseconds=1)

    def __call__(self) -> str:
        self.moment += self.step
        return format_utc(self.moment)
