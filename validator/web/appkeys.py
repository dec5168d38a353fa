"""Typed application keys: everything the composition root (app.py) puts on the app.

This module imports core types and protocols only, never a module of an audience
(terminal, operator, dashboard): an object one audience builds and another reaches
through the app is known here by a narrow protocol, so no audience imports another
through these keys, and nothing imports this module back.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from validator.clock import Clock
from validator.config_folder import Config
from validator.decide import Decider
from validator.keyset import KeySet
from validator.metrics import Metrics
from validator.offline.config import OfflineConfig
from validator.offline.reconcile import Reconciler
from validator.offline.service import BundleService
from validator.policy.model import Terminal
from validator.settings import Settings
from validator.state.store import Store, StoreUnavailable
from validator.web.errors import Answer, ErrorReporting
from validator.web.exceptions import ApiError

__all__ = ["BUNDLES", "CLOCK", "CONFIG", "DECIDER", "ERROR_REPORTER", "KEYSET", "LIVE_FEED",
           "METRICS", "OFFLINE_CONFIG", "RECONCILER", "SETTINGS", "STORE", "TERMINAL_API",
           "TERMINAL_AUTH", "TERMINAL_FRONT", "LiveView", "TerminalEndpoint", "TerminalListener",
           "TerminalSignatures"]


class TerminalEndpoint(Protocol):
    """`POST /v1/validations` once the body is read (terminal.validations.TerminalApi)."""

    async def answer(self, method: str, path: str, terminal_id: str, timestamp: str,
                     signature: str, body: bytes, started: float) -> Answer:
        """The answer to one request, whichever front read it."""

    def refuse(self, exc: ApiError | StoreUnavailable, terminal_id: str) -> Answer:
        """An error answer, counted and told to the error sink."""


class LiveView(Protocol):
    """The dashboard's live feed as its routes read it (dashboard.feed.LiveFeed)."""

    seq: int  # of the latest snapshot
    snapshot: dict[str, Any]  # the latest board, with this process's parts
    frame: bytes  # that snapshot as one Server-Sent Event
    closed: bool  # shutting down: streams end

    async def wait(self, seq: int, timeout_s: float) -> bool:
        """Until a snapshot newer than `seq` (True) or the timeout (False)."""

    def close(self) -> None:
        """End every stream (shutdown)."""


class TerminalSignatures(Protocol):
    """Terminal request signatures (terminal.auth.TerminalAuth)."""

    def authenticate(self, terminal_id: str, timestamp: str, signature: str, method: str,
                     path: str, body_sha256: str, *, now: float) -> Terminal:
        """The signing terminal; else `ApiError` 401, or 403 if it is disabled."""


class TerminalListener(Protocol):
    """The lean terminal front's listener (terminal.front.TerminalFront)."""

    port: int  # the port it listens on: the one asked for, or the kernel's pick for 0


SETTINGS = web.AppKey("settings", Settings)
CONFIG = web.AppKey("config", Config)
KEYSET = web.AppKey("keyset", KeySet)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
DECIDER = web.AppKey("decider", Decider)
# `POST /v1/validations` behind both HTTP fronts, built with the store.
TERMINAL_API = web.AppKey("terminal_api", TerminalEndpoint)
# Terminal signatures, for every endpoint a terminal calls (one cache of keyed contexts).
TERMINAL_AUTH = web.AppKey("terminal_auth", TerminalSignatures)
# The lean terminal front, when `settings.terminal_port` asks for it.
TERMINAL_FRONT = web.AppKey("terminal_front", TerminalListener)
# Offline terminals (terminal/offline.py): config/offline.toml when present, and the
# bundle service and the batch reconciler once the store is open.
OFFLINE_CONFIG = web.AppKey("offline_config", OfflineConfig)
BUNDLES = web.AppKey("bundles", BundleService)
RECONCILER = web.AppKey("reconciler", Reconciler)
# The dashboard's live feed: board, ledger cursor and latest snapshot (dashboard/).
LIVE_FEED = web.AppKey("live_feed", LiveView)
# This process's HTTP errors and offline events on their way to the board's error
# stream (dashboard/feed.py), with or without a dashboard in this process.
ERROR_REPORTER = web.AppKey("error_reporter", ErrorReporting)
