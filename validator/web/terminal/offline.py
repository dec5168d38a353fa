"""Offline terminals over HTTP: `GET /v1/terminal/bundle` and `POST /v1/validations:batch`.

Thin: authenticate the terminal exactly as protocol §4 (a GET signs the empty body's
hash), parse, call `validator.offline`, serialise. `setup(app)` is the one line the
composition root calls; with no `offline.toml` in the configuration or no bundle key in
the key set, both routes answer 404 `offline_disabled` and say which is missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable

import orjson
from aiohttp import web

from validator.keyset import BUNDLE_KEY, TRUST_LIST
from validator.ledger.record import LedgerRecord
from validator.metrics import Metrics
from validator.offline.config import OFFLINE_FILE, load_offline_config
from validator.offline.reconcile import Reconciler
from validator.offline.service import BundleService
from validator.policy.model import Terminal
from validator.web.appkeys import (
    BUNDLES,
    CLOCK,
    CONFIG,
    DECIDER,
    ERROR_REPORTER,
    KEYSET,
    METRICS,
    OFFLINE_CONFIG,
    RECONCILER,
    SETTINGS,
    STORE,
    TERMINAL_AUTH,
)
from validator.web.body import read_limited
from validator.web.errors import BUNDLE_FETCHED, RECORDS_UPLOADED
from validator.web.exceptions import ApiError
from validator.web.terminal.batch_schema import parse_batch

__all__ = ["BATCH_PATH", "BUNDLE_PATH", "setup"]

BUNDLE_PATH = "/v1/terminal/bundle"
BATCH_PATH = "/v1/validations:batch"
BUNDLE_TYPE = "application/x-ssc-bundle"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_MAX_SEQ_DIGITS = 16


def setup(app: web.Application) -> None:
    """Routes, and the bundle service built once the store is open."""
    offline = load_offline_config(app[SETTINGS].config_dir)
    if offline is not None:
        app[OFFLINE_CONFIG] = offline
    app.router.add_get(BUNDLE_PATH, get_bundle)
    app.router.add_post(BATCH_PATH, post_batch)
    app.cleanup_ctx.append(_bundles_ctx)


async def _bundles_ctx(app: web.Application) -> AsyncIterator[None]:
    key = app[KEYSET].bundle_key
    offline = app.get(OFFLINE_CONFIG)
    metrics = app[METRICS]
    if key is not None and offline is not None:
        trust_path = app[SETTINGS].keys_dir / TRUST_LIST
        trust = json.loads(trust_path.read_text(encoding="utf-8"))["keys"]
        store = app[STORE]
        app[BUNDLES] = BundleService(store=store, holders=store.list_holders,
                                     config=app[CONFIG], offline=offline, key=key,
                                     trust_jwks=trust, clock=app[CLOCK])
        app[RECONCILER] = Reconciler(decider=app[DECIDER], clock=app[CLOCK],
                                     offline=offline, observe=_counter(metrics))
    yield


def _counter(metrics: Metrics) -> Callable[[LedgerRecord], None]:
    """Counts an uploaded record's decision and fraud signal like a live one's; its
    latency is the terminal's, not ours, so the decision histogram leaves it out."""
    def count(record: LedgerRecord) -> None:
        metrics.decisions.labels(record.decision, record.reason, record.credential,
                                 record.venue.partition(":")[0]).inc()
        if record.fraud is not None:
            metrics.fraud_signals.labels(record.fraud).inc()
    return count


def _service(app: web.Application) -> BundleService:
    service = app.get(BUNDLES)
    if service is None:
        missing = [] if app.get(OFFLINE_CONFIG) else [f"config {OFFLINE_FILE}"]
        if app[KEYSET].bundle_key is None:
            missing.append(f"key set {BUNDLE_KEY}")
        raise ApiError(404, "offline_disabled",
                       "offline terminals are not enabled: no " + " and no ".join(missing))
    return service


def _authenticate(request: web.Request, body_sha256: str) -> Terminal:
    headers = request.headers
    try:
        return request.app[TERMINAL_AUTH].authenticate(
            headers.get("X-Terminal-Id", ""), headers.get("X-Timestamp", ""),
            headers.get("X-Signature", ""), request.method, request.rel_url.raw_path,
            body_sha256, now=request.app[CLOCK].now())
    except ApiError as exc:
        if exc.status == 401:
            request.app[METRICS].fraud_signals.labels("bad_terminal_signature").inc()
        raise


async def get_bundle(request: web.Request) -> web.Response:
    """The signed bundle, full, or a delta since `?since=SEQ` when the service can."""
    terminal = _authenticate(request, EMPTY_SHA256)
    service = _service(request.app)
    since_text = request.query.get("since")
    since = None
    if since_text is not None:
        if not (since_text.isascii() and since_text.isdigit()) or \
                len(since_text) > _MAX_SEQ_DIGITS:
            raise ApiError(400, "invalid_request", "since: expected a sequence number")
        since = int(since_text)
    bundle = await service.bundle(since)
    now = request.app[CLOCK].now()
    request.app[METRICS].bundle_fetched.labels(terminal.id).set(now)
    request.app[ERROR_REPORTER].note(terminal.id, BUNDLE_FETCHED, now)  # to the board
    return web.Response(body=bundle.body, content_type=BUNDLE_TYPE, headers={
        "X-Bundle-Seq": str(bundle.seq), "X-Bundle-Kind": "full" if bundle.full else "delta"})


async def post_batch(request: web.Request) -> web.Response:
    """Offline records, each decided again and settled once (protocol §8.4)."""
    app = request.app
    offline = app.get(OFFLINE_CONFIG)
    limit = offline.batch_max_bytes if offline is not None else 16 * 1024
    body = await read_limited(request, limit)
    terminal = _authenticate(request, hashlib.sha256(body).hexdigest())
    _service(app)  # 404 offline_disabled, naming what is missing
    reconciler, offline = app[RECONCILER], app[OFFLINE_CONFIG]
    records = parse_batch(body, offline.batch_max_records)
    answer = await reconciler.apply(terminal_id=terminal.id, operator=terminal.operator,
                                    venue=terminal.venue, records=records)
    metrics, now = app[METRICS], app[CLOCK].now()
    metrics.uploaded.labels(terminal.id).set(now)
    if answer["applied"]:  # to the dashboard's offline panel, through the error stream
        app[ERROR_REPORTER].note(terminal.id, RECORDS_UPLOADED, now, answer["applied"])
    for result in answer["results"]:
        metrics.offline_records.labels(result["status"]).inc()
        metrics.offline_differences.inc(result["status"] == "applied" and result["differs"])
    return web.Response(body=orjson.dumps(answer), content_type="application/json")
