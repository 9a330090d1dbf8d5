"""What can go wrong talking to the gateway, each with a message a person can act on."""


class ClientError(Exception):
    """Talking to the gateway failed; ``status`` is the exit status a command should use."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class GatewayUnreachable(ClientError):
    """Nothing answers at the URL: no gateway is running there."""


class GatewayRefused(ClientError):
    """The gateway refused the WebSocket upgrade with an HTTP status."""

    def __init__(self, message: str, http_status: int) -> None:
        super().__init__(message)
        self.http_status = http_status


class TokenRequired(ClientError):
    """The gateway wants its bearer token (401 on the upgrade, or close code 4401)."""


class ProtocolViolation(ClientError):
    """The gateway sent something that is not a protocol frame."""


class ReplyTimeout(ClientError):
    """Nothing arrived in the time allowed."""


class ConnectionLost(ClientError):
    """The connection closed; the message says why, with the gateway's own reason if it gave
    one (a code this client does not know still shows that reason)."""

    def __init__(self, close_code: int | None, reason: str = "") -> None:
        known = _CLOSE_REASONS.get(close_code, f"the gateway closed the connection ({close_code})")
        super().__init__(f"{known}: {reason}" if reason else known)
        self.close_code = close_code


AUTH_FAILED = 4401

_CLOSE_REASONS: dict[int | None, str] = {
    1001: "the gateway shut down (close code 1001)",
    1008: "the gateway dropped this client for reading too slowly (close code 1008)",
    1009: "a frame was larger than the gateway accepts (close code 1009)",
    AUTH_FAILED: "the gateway closed the connection: authentication failed (close code 4401)",
    None: "the connection to the gateway was lost",
}
