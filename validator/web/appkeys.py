"""Typed application keys: everything the composition root puts on the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from validator.clock import Clock
from validator.config import Config
from validator.decide import Decider
from validator.keyset import KeySet
from validator.metrics import Metrics
from validator.settings import Settings
from validator.state.store import Store
from validator.web.livefeed import ErrorReporter, LiveFeed

if TYPE_CHECKING:
    from validator.web.terminals import TerminalApi

SETTINGS = web.AppKey("settings", Settings)
CONFIG = web.AppKey("config", Config)
KEYSET = web.AppKey("keyset", KeySet)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
DECIDER = web.AppKey("decider", Decider)
# The dashboard's live feed: board, ledger cursor and latest snapshot (dashboard.py).
LIVE_FEED = web.AppKey("live_feed", LiveFeed)
# This process's HTTP errors on their way to the board's error stream (livefeed.py).
ERROR_REPORTER = web.AppKey("error_reporter", ErrorReporter)
# `POST /v1/validations` behind both HTTP fronts (terminals.py), built with the store.
TERMINAL_API: web.AppKey[TerminalApi] = web.AppKey("terminal_api")
