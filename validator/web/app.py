"""The composition root: `create_app(settings)` wires configuration, keys, store and routes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from validator.clock import Clock, SystemClock
from validator.config import load_config
from validator.credentials.kinds import CacheSizes, build_verifiers
from validator.decide import Decider
from validator.keyset import load_keyset
from validator.metrics import Metrics
from validator.settings import Settings
from validator.state import open_store
from validator.state.store import StoreUnavailable
from validator.web import dashboard, main_port, ops
from validator.web.appkeys import (
    CLOCK,
    CONFIG,
    DECIDER,
    ERROR_REPORTER,
    KEYSET,
    METRICS,
    SETTINGS,
    STORE,
    TERMINAL_API,
    TERMINAL_AUTH,
)
from validator.web.errors import error_middleware
from validator.web.http_limits import DEFAULT_LIMITS, HttpLimits
from validator.web.livefeed import ErrorReporter
from validator.web.operator import routes as operator_routes
from validator.web.terminal import offline, validations
from validator.web.terminal.auth import TerminalAuth


def create_app(settings: Settings, *, clock: Clock | None = None,
               limits: HttpLimits = DEFAULT_LIMITS) -> web.Application:
    """Load configuration and keys (errors surface here, before serving) and build the app,
    served on aiohttp's port with `validator.web.main_port`'s connection handling."""
    metrics = Metrics()
    app = web.Application(middlewares=[main_port.head_check(limits, metrics),
                                       error_middleware(metrics, settings.retry_after_s)],
                          handler_args=main_port.handler_args(limits, metrics))
    main_port.install(app)
    app[SETTINGS] = settings
    app[CONFIG] = load_config(settings.config_dir)
    app[KEYSET] = load_keyset(settings.keys_dir)
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = metrics
    app[TERMINAL_AUTH] = TerminalAuth(app[CONFIG].terminals, app[KEYSET],
                                      cache_size=settings.terminal_key_cache_size)
    app.cleanup_ctx.append(_store_ctx)

    app.router.add_post(validations.VALIDATIONS_PATH, validations.post_validation)
    app.router.add_get("/healthz", ops.healthz)
    app.router.add_get("/readyz", ops.readyz)
    app.router.add_get("/metrics", ops.metrics)
    operator_routes.setup_routes(app)
    offline.setup(app)
    if settings.dashboard:
        dashboard.setup_routes(app)
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, config, keys = app[SETTINGS], app[CONFIG], app[KEYSET]
    store = await open_store(settings.store_url, clock=app[CLOCK],
                             ledger_retention_days=settings.ledger_retention_days)
    app[STORE] = store
    app[DECIDER] = Decider(
        engine=config.engine,
        verifiers=build_verifiers(keys, CacheSizes(level1=settings.level1_cache_size,
                                                   card_keys=settings.card_key_cache_size)),
        store=store,
        clock=app[CLOCK],
        observe_store=app[METRICS].observe_store,
    )
    # HTTP errors reach the dashboard's board through the store, from every process:
    # the live feed reports them in its tick; without one, a task of their own does.
    errors = app[ERROR_REPORTER] = ErrorReporter(store, app[METRICS], config.terminals)
    app[TERMINAL_API] = validations.TerminalApi(
        auth=app[TERMINAL_AUTH], clock=app[CLOCK], decider=app[DECIDER],
        metrics=app[METRICS], retry_after_s=settings.retry_after_s, errors=errors)
    reporting = None if settings.dashboard else asyncio.create_task(
        errors.run(), name="error-reporter")
    yield
    if reporting is not None:
        reporting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporting
        with contextlib.suppress(StoreUnavailable):
            await errors.report()  # the last second's
    await store.close()
