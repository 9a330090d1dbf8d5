"""The configuration's shape: one attrs class per section, with its defaults and validators.

``config_loading`` fills it from defaults < config.toml < AGENTSPACE_* < CLI flags.
"""

import re
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from attrs import field, frozen

from agentspace_gateway.protocol.validators import normalise_model
from agentspace_gateway.strict_converter import FieldValueError
from agentspace_gateway.vault.providers import PROVIDERS

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
VaultBackendName = Literal["auto", "keyring", "file"]


def _normalised(value: Any) -> Any:
    # The strict converter has already checked the type; a bad shape is left to the validator.
    if isinstance(value, str):
        try:
            return normalise_model(value)
        except FieldValueError:
            return value
    return value


def _not_negative(_: object, attribute: "attrs.Attribute[Any]", value: float) -> None:
    if value < 0:
        raise FieldValueError(attribute.name, "must not be negative")


def _port(_: object, attribute: "attrs.Attribute[int]", value: int) -> None:
    if not 0 <= value <= 65535:
        raise FieldValueError(attribute.name, "must be a TCP port from 0 to 65535")


def _positive(_: object, attribute: "attrs.Attribute[Any]", value: float) -> None:
    if value <= 0:
        raise FieldValueError(attribute.name, "must be greater than 0")


@frozen
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = field(default=3271, validator=_port)
    allow_remote: bool = False
    # Extra names accepted in the Host header, besides loopback addresses and localhost.
    allowed_hosts: tuple[str, ...] = ()
    shutdown_timeout_seconds: float = field(default=10.0, validator=_positive)
    # Open HTTP and WebSocket connections at once; 0 derives it from the descriptor limit
    # (connection_limits.py). Past it a connection is refused with 503 at once.
    max_connections: int = field(default=0, validator=_not_negative)
    # A connection must deliver a request's headers within this, from its first byte (or
    # from its opening, for the first request); else it is closed.
    header_timeout_seconds: float = field(default=10.0, validator=_positive)
    # A connection with no request under way is closed after this.
    idle_timeout_seconds: float = field(default=75.0, validator=_positive)
    # Time the event loop's stalls and report them at GET /debug/loop (for benchmarks).
    loop_monitor: bool = False


def _model(_: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    try:
        normalise_model(value)
    except FieldValueError as error:
        raise FieldValueError(attribute.name, str(error)) from None


def _origin(_: object, attribute: "attrs.Attribute[Any]", value: tuple[str, ...]) -> None:
    for origin in value:
        if not _ORIGIN.fullmatch(origin):
            raise FieldValueError(
                attribute.name,
                f"{origin!r} is not an origin: write scheme://host[:port], e.g. http://localhost:5173",
            )


_ORIGIN = re.compile(r"https?://[^/\s?#]+")
_AGENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _agent_id(_: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    if not _AGENT_ID.fullmatch(value):
        raise FieldValueError(attribute.name, "must be 1 to 64 characters of A-Z a-z 0-9 _ -")


@frozen
class GatewayConfig:
    # The WebSocket and the console ask for a credential even on loopback: on a shared
    # machine every local user is a neighbour. False restores the old open door (serve warns).
    require_token: bool = True
    # How long a console login link (serve's, or agentspace-gateway open's) stays usable.
    login_code_seconds: float = field(default=600.0, validator=_positive)
    # Browser origins allowed to open the WebSocket, besides the gateway's own pages.
    allowed_origins: tuple[str, ...] = field(default=(), validator=_origin)
    default_model: str = field(default="claude-sonnet-5-5", validator=_model, converter=_normalised)
    default_agent_id: str = field(default="default", validator=_agent_id)
    max_frame_bytes: int = field(default=1024 * 1024, validator=_positive)
    heartbeat_seconds: float = field(default=30.0, validator=_positive)
    auth_timeout_seconds: float = field(default=10.0, validator=_positive)
    outbound_queue_messages: int = field(default=1024, validator=_positive)
    outbound_queue_bytes: int = field(default=16 * 1024 * 1024, validator=_positive)
    slow_client_seconds: float = field(default=5.0, validator=_positive)
    # Per connection: a token bucket refilled at messages_per_second, holding message_burst;
    # a frame over it is answered RATE_LIMITED, so one client cannot starve the others.
    messages_per_second: float = field(default=100.0, validator=_positive)
    message_burst: int = field(default=200, validator=_positive)
    # Handlers running at once per connection; a frame past it is answered RATE_LIMITED too.
    max_inflight_messages: int = field(default=32, validator=_positive)
    # How often connections that proved the token re-check it; a rotated token closes them.
    token_check_seconds: float = field(default=1.0, validator=_positive)


@frozen
class KeyserverConfig:
    # Wrong credentials (tokens on /keys and /gateway, client keys on the HTTP APIs) allowed
    # per credential prefix in the window; past it that prefix gets 429 until the oldest
    # failure leaves the window. The right credential is never refused (failed_auth.py).
    failed_auth_limit: int = field(default=10, validator=_positive)
    failed_auth_window_seconds: float = field(default=60.0, validator=_positive)
    # Wrong credentials allowed in any one second over every prefix together: past it any
    # further wrong one gets 429, however fresh its prefix.
    failed_auth_global_per_second: int = field(default=10, validator=_positive)


@frozen
class AnthropicConfig:
    # Empty: ANTHROPIC_BASE_URL, else the SDK's default.
    base_url: str = ""
    max_tokens: int = field(default=4096, validator=_positive)
    timeout_seconds: float = field(default=600.0, validator=_positive)
    # A chat's retries before its reply starts (429, 529, 5xx, connection errors), made by
    # the gateway for every provider (llm/retries.py); the SDK itself never retries.
    max_retries: int = field(default=2, validator=_not_negative)
    # The longest wait before a retry: an upstream retry-after longer than this is not
    # waited, the client gets RATE_LIMITED with retryAfterMs at once.
    max_retry_wait_seconds: float = field(default=30.0, validator=_not_negative)


_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
# Never forwarded whatever the list says: credentials (the provider key is the gateway's
# own) and what the HTTP client sets for the upstream connection itself.
UNFORWARDABLE_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "cookie",
        "proxy-authorization",
    }
)


def _header_names(_: object, attribute: "attrs.Attribute[Any]", value: tuple[str, ...]) -> None:
    for name in value:
        if not _HEADER_NAME.fullmatch(name):
            raise FieldValueError(attribute.name, f"{name!r} is not an HTTP header name")
        if name.lower() in UNFORWARDABLE_HEADERS:
            raise FieldValueError(attribute.name, f"{name!r} is never forwarded upstream")


@frozen
class ProxyConfig:
    """Anthropic's HTTP API on the gateway's port (docs/claude-code.md)."""

    # A request body past this is refused (413) before it is read whole.
    max_body_bytes: int = field(default=32 * 1024 * 1024, validator=_positive)
    # Client headers forwarded upstream besides anthropic-version and anthropic-beta.
    forward_headers: tuple[str, ...] = field(default=(), validator=_header_names)
    # Request bodies kept per session for inspection (0 keeps none).
    kept_requests: int = field(default=20, validator=_not_negative)
    # How often open streams re-check that their client key is still live.
    key_check_seconds: float = field(default=1.0, validator=_positive)
    # A request whose credential is not a gateway client key (its own Anthropic API key or
    # subscription token) is forwarded with that credential unchanged, still metered.
    passthrough_credentials: bool = False


@frozen
class ContextConfig:
    system_prompt: str = "You are a helpful AI assistant."
    history_messages: int = field(default=50, validator=_positive)


@frozen
class PriceOverride:
    """USD per million tokens, replacing or adding a model's prices.

    cache_write is the five-minute write price, cache_write_1h the one-hour one; left out,
    the one-hour price is 2x input when cache_write is 1.25x input (Anthropic's published
    multipliers), else one-hour writes are unpriced. Under the key ``unknown_model`` it is
    the price of every model neither this table nor genai-prices knows.
    """

    input: float = field(validator=_not_negative)
    output: float = field(validator=_not_negative)
    cache_read: float | None = None
    cache_write: float | None = None
    cache_write_1h: float | None = None


_KEY_SOURCE = re.compile(r"none|vault:[A-Za-z0-9_.-]{1,64}|env:[A-Za-z_][A-Za-z0-9_]{0,127}")
_BASE_URL = re.compile(r"https?://[^\s?#]+")


def _key_source(_: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    if not _KEY_SOURCE.fullmatch(value):
        raise FieldValueError(
            attribute.name, 'must be "vault:NAME", "env:VARIABLE" or "none" (a keyless server)'
        )
    kind, _, name = value.partition(":")
    if kind == "vault" and name not in PROVIDERS:
        raise FieldValueError(
            attribute.name,
            f"the vault holds keys for {', '.join(PROVIDERS)} only; use env:VARIABLE for others",
        )


def _base_url(_: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    if not _BASE_URL.fullmatch(value):
        raise FieldValueError(attribute.name, "must be an http(s) URL such as http://host:8000/v1")


@frozen
class ProviderConfig:
    """An upstream (docs/openai-and-local-models.md): ``[providers.NAME]``.

    ``prices``: "local" prices its models at local_input/local_output USD per million
    tokens (default 0, shown as "local"); any other value is the genai-prices provider id
    its models are looked up under. Left empty: "local" for a keyless provider, else NAME.
    """

    kind: Literal["anthropic", "openai"]
    base_url: str = field(validator=_base_url)
    key: str = field(default="none", validator=_key_source)
    prices: str = ""
    local_input: float = field(default=0.0, validator=_not_negative)
    local_output: float = field(default=0.0, validator=_not_negative)


def _time_zone(instance: object, attribute: Any, value: str) -> None:
    try:
        ZoneInfo(value)
    except (ValueError, ZoneInfoNotFoundError):
        raise ValueError(
            f"{attribute.name} must be an IANA time zone (like UTC), got {value!r}"
        ) from None


def _thresholds(_: object, attribute: "attrs.Attribute[Any]", value: tuple[int, ...]) -> None:
    for percent in value:
        if not 1 <= percent <= 100:
            raise FieldValueError(attribute.name, f"must be percents from 1 to 100, got {percent}")


@frozen
class BudgetsConfig:
    # Where a daily or monthly budget's period starts: midnight in this zone.
    time_zone: str = field(default="UTC", validator=_time_zone)
    # Percents of a limit whose crossing raises one budget.alert per budget and period.
    alert_thresholds: tuple[int, ...] = field(default=(50, 80, 100), validator=_thresholds)


@frozen
class VaultConfig:
    backend: VaultBackendName = "auto"


@frozen
class DatabaseConfig:
    busy_timeout_ms: int = field(default=5000, validator=_positive)


@frozen
class LoggingConfig:
    level: LogLevel = "INFO"
    access_log: bool = True


@frozen
class Config:
    server: ServerConfig = ServerConfig()
    gateway: GatewayConfig = GatewayConfig()
    keyserver: KeyserverConfig = KeyserverConfig()
    anthropic: AnthropicConfig = AnthropicConfig()
    context: ContextConfig = ContextConfig()
    proxy: ProxyConfig = ProxyConfig()
    # [pricing."claude-sonnet-4-5"] input = 3.0, output = 15.0, cache_read = 0.3, ...
    # [pricing.unknown_model] a conservative price for models nobody knows (default: none,
    # and such a model's requests are recorded unpriced).
    pricing: dict[str, PriceOverride] = field(factory=dict)
    # [providers.NAME] beside (or replacing) the built-in anthropic, openai and ollama.
    providers: dict[str, ProviderConfig] = field(factory=dict)
    # [models] alias = "provider/model": names a client may use for a provider's model.
    models: dict[str, str] = field(factory=dict)
    budgets: BudgetsConfig = BudgetsConfig()
    vault: VaultConfig = VaultConfig()
    database: DatabaseConfig = DatabaseConfig()
    logging: LoggingConfig = LoggingConfig()
