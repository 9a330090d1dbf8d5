"""The gateway's own retries of a chat's upstream request: bounded, and never silent.

The SDK retries by itself and waits out whatever ``retry-after`` says (anthropic 2.17's
``_calculate_retry_timeout`` takes it up to 4,294,967 s), with no hook to tell anyone: an
upstream answering ``retry-after: 3600`` held a chat for an hour after ``chat.stream.start``
with nothing on the wire. So the SDK is built with ``max_retries=0`` and this loop, the
same for every provider, decides instead:

- only a failure before the reply's first event is retried (nothing was streamed or
  billed yet); one part-way through is the reply's end, as before;
- a ``retry-after`` longer than ``max_wait_seconds`` is not waited: that failure is the
  answer, with its ``retryAfterMs``, at once;
- without ``retry-after``, the SDK's own backoff (0.5 s doubling to 8 s, less up to a
  quarter of jitter);
- every wait is announced first (a ``Waiting`` event, ``chat.stream.status`` on the wire);
- ``timeout_seconds`` bounds everything before the first event, attempts and waits
  together: a wait that would end past it is not begun, and an attempt still silent at it
  is ``UPSTREAM_TIMEOUT``.
"""

import asyncio
import contextlib
import random
from collections.abc import AsyncGenerator, Callable

from attrs import frozen

from agentspace_gateway.metering.events import Failed, StreamEvent, Waiting
from agentspace_gateway.protocol.errors import ErrorCode, GatewayError

# The SDK's own backoff (anthropic and openai alike: _constants.py).
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0

Attempt = Callable[[], AsyncGenerator[StreamEvent, None]]


@frozen
class RetryPolicy:
    max_retries: int
    max_wait_seconds: float
    timeout_seconds: float


def backoff(retry: int, jitter: Callable[[], float] = random.random) -> float:
    """The wait before retry number ``retry`` (1 for the first) when upstream named none."""
    delay = min(INITIAL_RETRY_DELAY * 2.0 ** (retry - 1), MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * jitter())


def timed_out(seconds: float) -> GatewayError:
    return GatewayError(
        ErrorCode.UPSTREAM_TIMEOUT,
        f"The provider did not start its reply within {seconds:g} s "
        "(anthropic.timeout_seconds), retries included.",
        retryable=True,
    )


async def with_retries(attempt: Attempt, policy: RetryPolicy) -> AsyncGenerator[StreamEvent, None]:
    """The events of ``attempt()``, tried again as ``policy`` allows while it fails before
    its first event. Closing this generator closes the attempt running."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + policy.timeout_seconds
    retry = 0
    while True:
        async with contextlib.aclosing(attempt()) as events:
            try:
                async with asyncio.timeout_at(deadline):
                    first = await anext(events)
            except StopAsyncIteration:
                return
            except TimeoutError:
                yield Failed(timed_out(policy.timeout_seconds))
                return
            if type(first) is not Failed:
                yield first
                async for event in events:
                    yield event
                return
        error = first.error
        wait = _wait(error, retry + 1, policy)
        if wait is None or loop.time() + wait > deadline:
            yield first
            return
        retry += 1
        yield Waiting(wait, retry, error)
        await asyncio.sleep(wait)


def _wait(error: GatewayError, retry: int, policy: RetryPolicy) -> float | None:
    """Seconds to wait before ``retry``, or None when the failure is the answer."""
    if not error.retryable or retry > policy.max_retries:
        return None
    if error.retry_after_ms is None:
        return backoff(retry)
    wait = error.retry_after_ms / 1000
    return wait if wait <= policy.max_wait_seconds else None
