"""Bearer-token checks for the key server, in constant time."""

import hmac

from attrs import frozen

REALM = "agentspace-gateway"


@frozen
class Presented:
    token: str | None
    problem: str | None


def presented_token(authorization: str | None) -> Presented:
    if authorization is None:
        return Presented(None, "missing Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return Presented(None, "Authorization scheme is not Bearer")
    token = token.strip()
    if not token:
        return Presented(None, "empty bearer token")
    return Presented(token, None)


def token_matches(presented: str, expected: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str; length differences leak nothing
    # beyond the length itself.
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def challenge(*, invalid: bool) -> dict[str, str]:
    value = f'Bearer realm="{REALM}"'
    if invalid:
        value += ', error="invalid_token"'
    return {"WWW-Authenticate": value}
