"""Token counts and costs as they go on the wire: every cost as USD (a float, for display)
and as an exact integer of nano-dollars (for adding up). Every reply that carries a
request's usage builds it here, so no door forgets the integers."""

from agentspace_gateway.pricing import Cost, TokenCounts, usd
from agentspace_gateway.protocol import usage_messages


def wire_usage(counts: TokenCounts, *, estimated: bool = False) -> usage_messages.TokenUsage:
    return usage_messages.TokenUsage(
        input_tokens=counts.input_tokens,
        output_tokens=counts.output_tokens,
        cache_creation_input_tokens=counts.cache_creation_input_tokens,
        cache_read_input_tokens=counts.cache_read_input_tokens,
        total_tokens=counts.total,
        cache_creation_1h_input_tokens=counts.cache_creation_1h_input_tokens,
        estimated=estimated,
    )


def wire_cost(cost: Cost) -> usage_messages.Cost:
    return usage_messages.Cost(
        input_cost=usd(cost.input_side_nanousd),
        output_cost=usd(cost.output_nanousd),
        total_cost=usd(cost.total_nanousd),
        priced=cost.priced,
        input_cost_nanos=cost.input_side_nanousd,
        output_cost_nanos=cost.output_nanousd,
        total_cost_nanos=cost.total_nanousd,
        price_source=None if cost.prices is None else cost.prices.source,
    )
