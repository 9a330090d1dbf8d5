"""context.inspect: what the next request to the model would carry, section by section.

Bytes, estimated tokens and estimated cost per section, the totals, and how far the
estimates have run from Anthropic's own counts in this session. With ``exact``, the
assembled request is also measured by Anthropic's token-counting endpoint.
"""

import anthropic

from agentspace_gateway import appkeys
from agentspace_gateway.llm.errors import upstream_error
from agentspace_gateway.plugin_api import ConnectionContext, handles
from agentspace_gateway.pricing import usd
from agentspace_gateway.protocol.messages import (
    ContextInspect,
    ContextInspection,
    ContextSection,
    ContextTotals,
)

from .sessions import find_session


@handles(ContextInspect, replies=[ContextInspection])
async def context_inspect(context: ConnectionContext, message: ContextInspect) -> None:
    services = context.app[appkeys.CHAT]
    session = await find_session(context, message.session_id)
    assembled = await services.assembler.assemble(session.id, session.model)
    price_book = services.price_book

    def cost(tokens: int) -> float:
        return usd(price_book.estimate_input_nanousd(session.model, tokens) or 0)

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
    accuracy = await context.app[appkeys.USAGE_LEDGER].estimate_accuracy(session.id)
    total_tokens = assembled.estimated_input_tokens
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
                    cost_estimate=cost(section.token_estimate),
                )
                for section in assembled.sections
            ],
            totals=ContextTotals(
                byte_count=sum(section.byte_count for section in assembled.sections),
                token_estimate=total_tokens,
                cost_estimate=cost(total_tokens),
            ),
            estimate_ratio=accuracy.ratio,
            exact_input_tokens=exact,
        )
    )
