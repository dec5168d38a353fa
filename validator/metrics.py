"""Prometheus metrics, on a registry of the app's own (so tests can build many apps).

The decision path feeds `record_decision`; the dashboard's live feed
(`validator.web.dashboard.feed`) sets the gauges that are views of the shared ledger
(terminal last seen, capacity use) and times its own store round trips.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
)

from validator.ledger.record import LedgerRecord

# Decisions take a few hundred µs; the budget is a few ms; terminals give up at 400 ms.
_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# A store round trip on loopback is ~100 µs; a slow Redis shows up in the ms buckets.
_STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # The process's CPU, memory and file descriptors, and its garbage collections per
        # generation: a full collection used to stall validations for 25-63 ms
        # (validator/heap.py), and a leak shows in the resident memory.
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.decisions = Counter(
            "validator_decisions_total", "Validation decisions",
            ["decision", "reason", "credential", "venue_kind"], registry=self.registry)
        self.decision_seconds = Histogram(
            "validator_decision_seconds", "Time to decide one validation (server side)",
            buckets=_BUCKETS, registry=self.registry)
        self.fraud_signals = Counter(
            "validator_fraud_signals_total", "Fraud signals (replays, clones, blocks, forgeries)",
            ["kind"], registry=self.registry)
        self.http_errors = Counter(
            "validator_http_errors_total", "Terminal API requests answered with an error",
            ["status", "error"], registry=self.registry)
        self.store_errors = Counter(
            "validator_store_errors_total", "State store calls that failed", registry=self.registry)
        self.store_round_trip_seconds = Histogram(
            "validator_store_round_trip_seconds", "Time of one state store call, by operation",
            ["op"], buckets=_STORE_BUCKETS, registry=self.registry)
        self.store_up = Gauge(
            "validator_store_up", "1 if the last store ping answered, else 0",
            registry=self.registry)
        self.feed_leader = Gauge(
            "validator_live_feed_leader",
            "1 if this process reads the ledger for the dashboard's board, else 0",
            registry=self.registry)
        self.terminal_last_seen = Gauge(
            "validator_terminal_last_seen_timestamp_seconds",
            "Unix time of the terminal's latest ledgered decision (any validator process)",
            ["terminal", "venue"], registry=self.registry)
        # Offline terminals (docs/operations.md; config/alerts.yml watches the first).
        self.bundle_fetched = Gauge(
            "validator_terminal_bundle_fetched_timestamp_seconds",
            "Unix time of the terminal's latest offline bundle fetch (from this process)",
            ["terminal"], registry=self.registry)
        self.uploaded = Gauge(
            "validator_terminal_upload_timestamp_seconds",
            "Unix time of the terminal's latest batch upload (from this process)",
            ["terminal"], registry=self.registry)
        self.offline_records = Counter(
            "validator_offline_records_total",
            "Uploaded offline records by result: applied, duplicate, rejected",
            ["status"], registry=self.registry)
        self.offline_differences = Counter(
            "validator_offline_differences_total",
            "Applied offline records the service decided otherwise than the terminal",
            registry=self.registry)
        self.spot_entries = Gauge(
            "validator_spot_entries_today", "Entries at the spot today (local day)",
            ["spot"], registry=self.registry)
        self.spot_capacity_ratio = Gauge(
            "validator_spot_capacity_ratio", "Entries today / daily capacity of the spot",
            ["spot"], registry=self.registry)

        # Children resolved once: the decision path observes them on every request.
        self._store_ops = {op: self.store_round_trip_seconds.labels(op)
                           for op in ("snapshot", "commit")}
        # …and the decision counters, as they are first met (a few dozen label sets;
        # `labels()` takes a lock and builds its key on every call).
        self._decision_children: dict[tuple[str, str, str, str], Any] = {}
        self._fraud_children: dict[str, Any] = {}

    def observe_store(self, op: str, seconds: float) -> None:
        """One round trip of the decision path (`snapshot` / `commit`)."""
        self._store_ops[op].observe(seconds)

    def record_decision(self, record: LedgerRecord, seconds: float) -> None:
        key = (record.decision, record.reason, record.credential,
               record.venue.partition(":")[0])
        child = self._decision_children.get(key)
        if child is None:
            child = self._decision_children[key] = self.decisions.labels(*key)
        child.inc()
        self.decision_seconds.observe(seconds)
        if record.fraud is not None:
            fraud = self._fraud_children.get(record.fraud)
            if fraud is None:
                fraud = self._fraud_children[record.fraud] = \
                    self.fraud_signals.labels(record.fraud)
            fraud.inc()

    @contextmanager
    def store_call(self, op: str) -> Iterator[None]:
        """Time one store call as `op`; a call that raises counts as a store error too."""
        started = time.perf_counter()
        try:
            yield
        except Exception:
            self.store_errors.inc()
            raise
        finally:
            self.store_round_trip_seconds.labels(op).observe(time.perf_counter() - started)
