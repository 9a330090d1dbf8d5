"""usage.query: tokens, cost and request counts per model, for one session or all, and
optionally a time range; summed in SQL over exact nano-dollars, and sent as both. With
groupBy client, agent or session, the same usage is also summed per group."""

from agentspace_gateway import appkeys
from agentspace_gateway.plugin_api import ConnectionContext, ErrorCode, GatewayError, handles
from agentspace_gateway.pricing import usd
from agentspace_gateway.protocol.usage_messages import (
    GrandTotal,
    ModelUsageReport,
    UsageGroup,
    UsageQuery,
    UsageReport,
)
from agentspace_gateway.storage.usage_groups import GroupUsage, UsageGroups

from .sessions import find_session


@handles(UsageQuery, replies=[UsageReport])
async def usage_query(context: ConnectionContext, message: UsageQuery) -> None:
    session_id = None
    if message.session_id is not None:
        session_id = (await find_session(context, message.session_id)).id
    client_name = message.client
    if context.client is not None:
        # A client key's connection sees its own usage only, whatever it asks for.
        if client_name not in (None, context.client.name):
            raise GatewayError(
                ErrorCode.FORBIDDEN,
                f"This connection's client key is {context.client.name!r}; it sees that "
                "client's usage only.",
            )
        client_name = context.client.name
    if client_name is not None:
        totals = await context.app[appkeys.SESSION_ORIGINS].totals_for_client(
            client_name, session_id=session_id, since=message.since, until=message.until
        )
    else:
        totals = await context.app[appkeys.USAGE_LEDGER].totals_by_model(
            session_id=session_id, since=message.since, until=message.until
        )
    groups = None
    if message.group_by != "model":
        found = await UsageGroups(context.app[appkeys.DATABASE]).totals(
            message.group_by,
            session_id=session_id,
            client=client_name,
            since=message.since,
            until=message.until,
        )
        groups = [_group(usage) for usage in found]
    per_model = {}
    for model, usage in sorted(totals.items()):
        total_tokens = (
            usage.input_tokens
            + usage.output_tokens
            + usage.cache_creation_input_tokens
            + usage.cache_read_input_tokens
        )
        per_model[model] = ModelUsageReport(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
            total_tokens=total_tokens,
            total_cost=usd(usage.cost_nanousd),
            request_count=usage.request_count,
            priced=usage.priced,
            total_cost_nanos=usage.cost_nanousd,
            cache_creation_1h_input_tokens=usage.cache_creation_1h_input_tokens,
            estimated_count=usage.estimated_count,
        )
    # Summed in nano-dollars first, so the total is exact before it is a float.
    total_nanos = sum(usage.cost_nanousd for usage in totals.values())
    context.send(
        UsageReport(
            request_id=message.id,
            per_model=per_model,
            grand_total=GrandTotal(
                total_cost=usd(total_nanos),
                total_tokens=sum(report.total_tokens for report in per_model.values()),
                request_count=sum(usage.request_count for usage in totals.values()),
                total_cost_nanos=total_nanos,
            ),
            group_by=None if groups is None else message.group_by,
            groups=groups,
        )
    )


def _group(usage: GroupUsage) -> UsageGroup:
    return UsageGroup(
        key=usage.key,
        client=usage.client,
        label=usage.label,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens,
        cache_creation_1h_input_tokens=usage.cache_creation_1h_input_tokens,
        total_tokens=usage.input_tokens
        + usage.output_tokens
        + usage.cache_creation_input_tokens
        + usage.cache_read_input_tokens,
        total_cost=usd(usage.cost_nanousd),
        total_cost_nanos=usage.cost_nanousd,
        request_count=usage.request_count,
        priced=usage.priced,
        estimated_count=usage.estimated_count,
    )
