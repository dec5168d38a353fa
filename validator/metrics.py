"""Prometheus metrics, on a registry of the app's own (so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from validator.ledger.record import LedgerRecord

# Decisions take a few hundred µs; the budget is a few ms; terminals give up at 400 ms.
_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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

    def record_decision(self, record: LedgerRecord, seconds: float) -> None:
        venue_kind = record.venue.partition(":")[0]
        self.decisions.labels(record.decision, record.reason, record.credential,
                              venue_kind).inc()
        self.decision_seconds.observe(seconds)
        if record.fraud is not None:
            self.fraud_signals.labels(record.fraud).inc()
