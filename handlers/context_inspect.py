"""context.inspect: what the next request to the model would carry, section by section.

Bytes, estimated tokens and estimated cost per section, the totals, and how far the
estimates have run from Anthropic's own counts: the session's ratio, its spread from
request to request, and a calibrated estimate of the next request (the estimate scaled by
the session's measured ratio, or the model's until the session has enough requests). With
``exact``, the assembled request is also measured by Anthropic's token-counting endpoint.
"""

import anthropic

from agentspace_gateway import appkeys
from agentspace_gateway.chat.setup import CHAT
from agentspace_gateway.llm.errors import upstream_error
from agentspace_gateway.plugin_api import ConnectionContext, handles
from agentspace_gateway.pricing import PriceBook, usd
from agentspace_gateway.protocol.context_messages import (
    CalibratedEstimate,
    ContextInspect,
    ContextInspection,
    ContextSection,
    ContextTotals,
    EstimateSpread,
)
from agentspace_gateway.proxied_inspection import PROXIED_INSPECTOR
from agentspace_gateway.storage import EstimateAccuracy, UsageLedger
from agentspace_gateway.storage.estimate_accuracy import SESSION_REQUESTS_TO_CALIBRATE

from .sessions import find_session


@handles(ContextInspect, replies=[ContextInspection])
async def context_inspect(context: ConnectionContext, message: ContextInspect) -> None:
    services = context.app[CHAT]
    session = await find_session(context, message.session_id)
    # A session of the Anthropic API door: its latest request as the client sent it.
    proxied_requests = context.app.get(PROXIED_INSPECTOR)
    if proxied_requests is not None and (
        proxied := await proxied_requests.inspect(message.id, session.id)
    ):
        context.send(proxied)
        return
    assembled = await services.assembler.assemble(session.id, session.model)
    price_book = services.price_book

    def nanos(tokens: int) -> int:
        return price_book.estimate_input_nanousd(session.model, tokens) or 0

    exact = None
    if message.exact:
        client = await services.clients.client()
        try:
            counted = await client.messages.count_tokens(
                model=assembled.model,
                system=assembled.system_prompt,
                messages=assembled.messages or [{"role": "user", "content": "."}],  # type: ignore[arg-type]
            )
        except anthropic.AnthropicError as error:
            raise upstream_error(error) from None
        exact = counted.input_tokens
    ledger = context.app[appkeys.USAGE_LEDGER]
    accuracy = await ledger.estimate_accuracy(session.id)
    total_tokens = assembled.estimated_input_tokens
    total_nanos = nanos(total_tokens)
    context.send(
        ContextInspection(
            request_id=message.id,
            session_id=session.id,
            model=session.model,
            sections=[
                ContextSection(
                    name=section.name,
                    content=section.content,
                    byte_count=section.byte_count,
                    token_estimate=section.token_estimate,
                    cost_estimate=usd(nanos(section.token_estimate)),
                    cost_estimate_nanos=nanos(section.token_estimate),
                )
                for section in assembled.sections
            ],
            totals=ContextTotals(
                byte_count=sum(section.byte_count for section in assembled.sections),
                token_estimate=total_tokens,
                cost_estimate=usd(total_nanos),
                cost_estimate_nanos=total_nanos,
            ),
            estimate_ratio=accuracy.ratio,
            exact_input_tokens=exact,
            estimate_spread=_spread(accuracy),
            calibrated=await _calibrated(ledger, price_book, session.model, accuracy, total_tokens),
        )
    )


def _spread(accuracy: EstimateAccuracy) -> EstimateSpread | None:
    spread = accuracy.spread()
    if spread is None:
        return None
    return EstimateSpread(
        request_count=accuracy.request_count,
        min_ratio=spread.minimum,
        p10_ratio=spread.p10,
        median_ratio=spread.median,
        p90_ratio=spread.p90,
        max_ratio=spread.maximum,
    )


async def _calibrated(
    ledger: UsageLedger,
    price_book: PriceBook,
    model: str,
    session: EstimateAccuracy,
    estimate: int,
) -> CalibratedEstimate | None:
    """The estimate scaled by the session's measured ratio, or the model's while the
    session has too few requests to go by; None while nothing is measured."""
    basis, accuracy = "session", session
    if session.request_count < SESSION_REQUESTS_TO_CALIBRATE:
        basis, accuracy = "model", await ledger.model_estimate_accuracy(model)
    ratio = accuracy.ratio
    if ratio is None:
        return None
    tokens = round(estimate * ratio)
    nanos = price_book.estimate_input_nanousd(model, tokens) or 0
    return CalibratedEstimate(
        basis=basis,
        ratio=ratio,
        request_count=accuracy.request_count,
        token_estimate=tokens,
        cost_estimate=usd(nanos),
        cost_estimate_nanos=nanos,
    )
