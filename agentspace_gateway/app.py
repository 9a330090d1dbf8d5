"""The application factory: wires the pieces together and nothing else.

``create_app`` takes no required arguments so that both
``adev runserver agentspace_gateway/app.py --app-factory create_app`` and
``python -m aiohttp.web agentspace_gateway.app:create_app`` can call it. Called so (no home,
no config), the app owns its process as ``serve`` would: the gateway's logging and
runtime.json (see dev_server.py).
"""

import importlib.metadata
import time
from collections.abc import Iterable, Sequence

from aiohttp import web

from agentspace_gateway import appkeys
from agentspace_gateway.budget_watches import setup_budget_watches
from agentspace_gateway.chat.setup import setup_chat
from agentspace_gateway.config import Config
from agentspace_gateway.config_loading import load_config
from agentspace_gateway.connection_limits import connection_phase_middleware
from agentspace_gateway.console import setup_console
from agentspace_gateway.dev_server import setup_dev_server
from agentspace_gateway.first_run import setup_first_run
from agentspace_gateway.gateway import setup_gateway
from agentspace_gateway.home import Home
from agentspace_gateway.host_check import host_check_middleware
from agentspace_gateway.http_errors import json_errors_middleware, remember_prepared
from agentspace_gateway.keyserver import setup_keyserver
from agentspace_gateway.logging_setup import configure_logging
from agentspace_gateway.loop_monitor_setup import setup_loop_monitor
from agentspace_gateway.metering.budget_setup import setup_budgets
from agentspace_gateway.openai_api.routes import setup_openai_api
from agentspace_gateway.providers.upstream_http import setup_upstream_http
from agentspace_gateway.proxy.setup import setup_proxy
from agentspace_gateway.storage_setup import setup_storage
from agentspace_gateway.vault_setup import setup_vault


def create_app(
    argv: Sequence[str] | None = None,
    *,
    config: Config | None = None,
    home: Home | None = None,
    handler_entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> web.Application:
    """Build the gateway. ``argv`` is what ``python -m aiohttp.web`` passes on; unused.

    ``handler_entry_points`` replaces the installed handler plugins (tests register inline
    plugins this way); by default every entry point in the group is loaded.
    """
    dev_server = home is None and config is None
    home = (home or Home.locate()).ensure()
    config = config or load_config(home.config_file)
    if dev_server:
        configure_logging(
            config.logging.level, access_log=config.logging.access_log, take_over=True
        )
    # Served on a specific non-loopback address (--allow-remote), that address names us too.
    allowed_names = (*config.server.allowed_hosts, config.server.host)
    app = web.Application(
        middlewares=[
            # First: a request under way lifts its connection's header deadline.
            connection_phase_middleware,
            host_check_middleware(allowed_names),
            json_errors_middleware,
        ],
        client_max_size=64 * 1024,
    )
    app.on_response_prepare.append(remember_prepared)
    app[appkeys.HOME] = home
    app[appkeys.CONFIG] = config
    app[appkeys.STARTED_AT] = time.monotonic()
    setup_storage(app)
    setup_vault(app)
    setup_first_run(app)
    setup_keyserver(app)
    setup_gateway(app, handler_entry_points)
    setup_upstream_http(app)  # before the chat and the doors, which send on it
    setup_chat(app)
    setup_budgets(app)
    setup_budget_watches(app)
    setup_openai_api(app)
    # After chat: the door prices and estimates with chat's price book and estimator.
    setup_proxy(app)
    setup_console(app)
    setup_loop_monitor(app)
    if dev_server:
        setup_dev_server(app)
    return app
