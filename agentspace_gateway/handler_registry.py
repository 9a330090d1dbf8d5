"""Handlers bound to their message classes, and the registry loaded once at startup.

Built-in handlers are plugins too: the package's list (``handlers.BUILTIN_HANDLERS``) and a
third party's entry points go into the registry the same way, through ``HandlerRegistry.add``,
so every test of a built-in handler also exercises the extension point.
"""

import importlib
import importlib.metadata
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from attrs import frozen

from agentspace_gateway import __version__
from agentspace_gateway.protocol.message_base import ClientMessage, ServerMessage

if TYPE_CHECKING:
    from agentspace_gateway.gateway.connection import ConnectionContext

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "agentspace_gateway.handlers"
# Tags the gateway answers itself, before or beside the handlers.
RESERVED_TYPES = {"auth": "agentspace-gateway (connection authentication)"}

M = TypeVar("M", bound=ClientMessage)
HandlerFunction = Callable[["ConnectionContext", M], Awaitable[None]]


@frozen
class BoundHandler(Generic[M]):
    """A handler function together with the message class it answers."""

    message_class: type[M]
    function: HandlerFunction[M]
    # The server messages this handler may send, so the published schema can describe them.
    replies: tuple[type[ServerMessage], ...] = ()

    @property
    def message_type(self) -> str:
        return self.message_class.type

    async def __call__(self, context: "ConnectionContext", message: M) -> None:
        await self.function(context, message)


def handles(
    message_class: type[M], *, replies: Iterable[type[ServerMessage]] = ()
) -> Callable[[HandlerFunction[M]], BoundHandler[M]]:
    """Bind an ``async def handler(context, message)`` to the message class it answers.

    ``replies`` names the server message classes the handler sends beyond the built-in ones.
    """
    tag = getattr(message_class, "type", None)
    if not isinstance(tag, str) or not tag:
        raise TypeError(f"{message_class.__name__} needs a wire tag: type: ClassVar[str] = '...'")
    if not issubclass(message_class, ClientMessage):
        raise TypeError(f"{message_class.__name__} must subclass ClientMessage")

    reply_classes = tuple(replies)

    def bind(function: HandlerFunction[M]) -> BoundHandler[M]:
        return BoundHandler(message_class, function, reply_classes)

    return bind


class PluginConflictError(Exception):
    """Two plugins claim the same message type; the gateway cannot choose between them."""


@frozen
class Registration:
    handler: BoundHandler[Any]
    owner: str


@frozen
class PluginFailure:
    owner: str
    reason: str


class HandlerRegistry:
    """A plain ``type -> handler`` dict, filled at startup and only read per message."""

    def __init__(self) -> None:
        self.by_type: dict[str, Registration] = {}
        self.failures: list[PluginFailure] = []

    def add(self, handler: BoundHandler[Any], owner: str) -> None:
        if handler.message_type in RESERVED_TYPES:
            raise PluginConflictError(
                f"Message type {handler.message_type!r} is reserved by "
                f"{RESERVED_TYPES[handler.message_type]}; {owner} must use another tag."
            )
        existing = self.by_type.get(handler.message_type)
        if existing is not None:
            raise PluginConflictError(
                f"Message type {handler.message_type!r} is claimed twice: by {existing.owner} "
                f"and by {owner}. Uninstall or disable one of them."
            )
        self.by_type[handler.message_type] = Registration(handler, owner)

    @property
    def message_classes(self) -> list[type[ClientMessage]]:
        return [registration.handler.message_class for registration in self.by_type.values()]

    @property
    def reply_classes(self) -> list[type[ServerMessage]]:
        seen: dict[str, type[ServerMessage]] = {}
        for registration in self.by_type.values():
            for reply in registration.handler.replies:
                seen.setdefault(reply.type, reply)
        return list(seen.values())

    def handler_for(self, message_type: str) -> BoundHandler[Any] | None:
        registration = self.by_type.get(message_type)
        return None if registration is None else registration.handler


def entry_point_owner(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = entry_point.dist
    package = f"{dist.name} {dist.version}" if dist is not None else "an unknown package"
    return f"{package} ({entry_point.name} = {entry_point.value})"


BUILTIN_PACKAGE = "agentspace_gateway.handlers"


def builtin_handlers() -> tuple[BoundHandler[Any], ...]:
    """The package's own handlers (``handlers.BUILTIN_HANDLERS``).

    Imported when asked for, not at the top: the handler modules import this one (through
    plugin_api); and by name, because ``handlers/`` installs into the package from the top
    of the repository, where the type checker reads it as its own package.
    """
    listed = importlib.import_module(BUILTIN_PACKAGE).BUILTIN_HANDLERS
    return tuple(handler for handler in listed if isinstance(handler, BoundHandler))


def builtin_owner(handler: BoundHandler[Any]) -> str:
    function = handler.function
    return (
        f"agentspace-gateway {__version__} "
        f"({handler.message_type} = {function.__module__}:{function.__qualname__})"
    )


def load_registry(
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> HandlerRegistry:
    """The built-in handlers, then every handler plugin, each loaded once. A broken plugin
    is reported and skipped; a duplicate message type raises PluginConflictError naming
    both owners. ``entry_points`` replaces the installed plugins (tests register inline
    plugins this way)."""
    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    registry = HandlerRegistry()
    for handler in builtin_handlers():
        registry.add(handler, builtin_owner(handler))
    for entry_point in sorted(entry_points, key=lambda ep: (ep.name, ep.value)):
        owner = entry_point_owner(entry_point)
        try:
            loaded = entry_point.load()
        except Exception as error:  # a plugin's import may raise anything
            log.exception("handler plugin %s failed to load and is skipped", owner)
            registry.failures.append(PluginFailure(owner, f"{type(error).__name__}: {error}"))
            continue
        if not isinstance(loaded, BoundHandler):
            reason = f"{entry_point.value} is not a handler bound with @handles(MessageClass)"
            log.error("handler plugin %s is skipped: %s", owner, reason)
            registry.failures.append(PluginFailure(owner, reason))
            continue
        registry.add(loaded, owner)
    return registry
