"""Everything a chat stream needs, built once per app by ``chat.setup``."""

from attrs import frozen

from agentspace_gateway.chat.context_assembly import ContextAssembler
from agentspace_gateway.chat.streams import ChatStreams
from agentspace_gateway.chat.upstreams import ChatUpstreams
from agentspace_gateway.gateway.shutdown import ShutdownSignal
from agentspace_gateway.llm.client import AnthropicClients
from agentspace_gateway.metering import Metering
from agentspace_gateway.pricing import PriceBook
from agentspace_gateway.storage import MessageRepository
from agentspace_gateway.tokens import TokenEstimator


@frozen
class ChatServices:
    clients: AnthropicClients
    upstreams: ChatUpstreams
    assembler: ContextAssembler
    estimator: TokenEstimator
    price_book: PriceBook
    metering: Metering
    messages: MessageRepository
    streams: ChatStreams
    shutdown: ShutdownSignal
    max_tokens: int
