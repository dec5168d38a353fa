"""The composition root: `create_app(settings)` wires configuration, keys, store and routes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from validator.clock import Clock, SystemClock
from validator.config_folder import load_config
from validator.credentials.kinds import CacheSizes, build_verifiers
from validator.decide import Decider
from validator.heap import freeze_start_up_heap
from validator.keyset import load_keyset
from validator.metrics import Metrics
from validator.settings import Settings
from validator.state import open_store
from validator.state.store import StoreUnavailable
from validator.web import main_port, ops
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
from validator.web.dashboard import routes as dashboard_routes
from validator.web.dashboard.feed import ErrorReporter
from validator.web.errors import error_middleware
from validator.web.http_limits import DEFAULT_LIMITS, HttpLimits
from validator.web.operator import routes as operator_routes
from validator.web.terminal import front, offline, validations
from validator.web.terminal.auth import TerminalAuth
from validator.web.terminal.front import DEFAULT_CONNECTION_LIMITS, ConnectionLimits


def create_app(settings: Settings, *, clock: Clock | None = None,
               limits: HttpLimits = DEFAULT_LIMITS,
               connection: ConnectionLimits = DEFAULT_CONNECTION_LIMITS,
               reuse_port: bool = False, metrics_dir: Path | None = None,
               freeze_heap: bool = False) -> web.Application:
    """Load configuration and keys (errors surface here, before serving) and build the app,
    served on aiohttp's port with `validator.web.main_port`'s connection handling.

    `limits` bound a request head on both ports; with `settings.terminal_port`, the lean
    terminal front listens there too (`connection`: its per-connection bounds;
    `reuse_port` when several workers share the port). `metrics_dir`: prometheus_client's
    multiprocess directory, whose sum `/metrics` then answers. `freeze_heap`: once
    started, what start-up built is frozen out of the garbage collector's walks
    (validator/heap.py; a serving process, not a test).
    """
    metrics = Metrics()
    if metrics_dir is not None:
        metrics.registry = _summed_registry(metrics_dir)
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
        dashboard_routes.setup_routes(app)
    if settings.terminal_port is not None:
        # Last: its context closes first, finishing its requests before the store closes.
        front.attach(app, settings.host, settings.terminal_port, reuse_port=reuse_port,
                     grace_s=settings.shutdown_timeout_s, limits=limits, connection=connection)
    if freeze_heap:
        app.on_startup.append(_freeze_heap)  # last: after the store, keys and caches are up
    return app


def _summed_registry(metrics_dir: Path) -> CollectorRegistry:
    """A registry whose collection is the sum over every worker's files in `metrics_dir`."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]
    return registry


async def _freeze_heap(_app: web.Application) -> None:
    freeze_start_up_heap()


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
