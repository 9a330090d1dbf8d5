"""Each upstream failure maps to one gateway error, whichever shape the SDK release gives it:
bare from the HTTP client (anthropic up to 2.16, mid-stream), or wrapped in the SDK's
APIConnectionError/APITimeoutError (2.17 on, and before the response on every release)."""

import json

import anthropic
import httpx2
import pytest

from agentspace_gateway.llm.errors import upstream_error

REQUEST = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")


def raised_from(error: BaseException, cause: BaseException) -> BaseException:
    """`error` as `raise error from cause` leaves it."""
    try:
        raise error from cause
    except BaseException as raised:
        return raised


def read_timeout() -> httpx2.ReadTimeout:
    return httpx2.ReadTimeout("", request=REQUEST)


def peer_closed() -> httpx2.RemoteProtocolError:
    return httpx2.RemoteProtocolError(
        "peer closed connection without sending complete message body", request=REQUEST
    )


@pytest.mark.parametrize(
    "error",
    [
        read_timeout(),
        raised_from(anthropic.APITimeoutError(request=REQUEST), read_timeout()),
        raised_from(anthropic.APIConnectionError(request=REQUEST), read_timeout()),
        raised_from(
            anthropic.APIConnectionError(request=REQUEST),
            raised_from(httpx2.ReadTimeout("", request=REQUEST), TimeoutError()),
        ),
        anthropic.APITimeoutError(request=REQUEST),
    ],
    ids=["bare", "api-timeout", "connection-error-from-timeout", "two-deep", "no-cause"],
)
def test_a_stall_is_an_upstream_timeout_in_every_shape(error: BaseException) -> None:
    gateway = upstream_error(error)
    assert (gateway.code, gateway.retryable) == ("UPSTREAM_TIMEOUT", True)
    assert gateway.message == "Anthropic did not answer in time."


@pytest.mark.parametrize(
    "error",
    [
        peer_closed(),
        raised_from(anthropic.APIConnectionError(request=REQUEST), peer_closed()),
        raised_from(
            anthropic.APIConnectionError(message="Connection error.", request=REQUEST),
            peer_closed(),
        ),
    ],
    ids=["bare", "wrapped", "wrapped-with-the-sdks-words"],
)
def test_a_dropped_connection_is_the_same_error_in_every_shape(error: BaseException) -> None:
    gateway = upstream_error(error)
    assert (gateway.code, gateway.retryable) == ("LLM_ERROR", True)
    assert gateway.message == (
        "The connection to Anthropic failed: "
        "peer closed connection without sending complete message body"
    )


def test_a_refused_connection_says_so() -> None:
    error = raised_from(
        anthropic.APIConnectionError(request=REQUEST),
        httpx2.ConnectError("All connection attempts failed", request=REQUEST),
    )
    gateway = upstream_error(error)
    assert (gateway.code, gateway.retryable) == ("LLM_ERROR", True)
    assert gateway.message == "The connection to Anthropic failed: All connection attempts failed"


def test_a_failure_while_handling_a_timeout_is_not_a_timeout() -> None:
    # Raised inside an `except` for a timeout, not from it: only the explicit cause counts.
    try:
        try:
            raise read_timeout()
        except httpx2.ReadTimeout:
            json.loads("{")
    except json.JSONDecodeError as raised:
        error = raised
    gateway = upstream_error(error)
    assert (gateway.code, gateway.retryable) == ("LLM_ERROR", True)
    assert gateway.message.startswith("The stream from Anthropic broke (JSONDecodeError: ")
