"""What a response should be, and how a real response is held against it.

An `Expected` names the HTTP status and, for a decision, its `decision`, `reason`,
`rule`, `categories` and fare. Where the right answer can legitimately be one of a few
(a scan sent just before 09:00 and decided just after), a check takes several
alternatives and passes if any matches; the report shows the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Expected", "describe_mismatch", "shape_problems"]


@dataclass(frozen=True)
class Expected:
    status: int = 200
    decision: str | None = None  # "accept" | "deny" (status 200 only)
    reason: str | None = None
    rule: str | None = None
    categories: tuple[str, ...] | None = None  # None: not checked
    fare_class: str | None = None
    amount_fen: int | None = None
    standard_fen: int | None = None
    error: str | None = None  # the `error` code of a non-200 answer

    @classmethod
    def accept(cls, rule: str, fare_class: str, amount_fen: int, standard_fen: int,
               categories: Sequence[str] = ()) -> Expected:
        return cls(200, "accept", "ok", rule, tuple(categories), fare_class, amount_fen,
                   standard_fen)

    @classmethod
    def deny(cls, reason: str) -> Expected:
        return cls(200, "deny", reason, categories=())

    @classmethod
    def http(cls, status: int, error: str | None = None) -> Expected:
        return cls(status, error=error)

    def label(self) -> str:
        """Short text for reports: `accept bus.senior_70 free 0`, `deny replayed`, `400`."""
        if self.status != 200:
            return f"HTTP {self.status} {self.error or ''}".strip()
        if self.decision == "accept":
            return f"accept {self.rule} {self.fare_class} {self.amount_fen}"
        return f"deny {self.reason}"

    def differences(self, status: int, body: Mapping[str, Any]) -> list[str]:
        """Each way `status`/`body` differs from this expectation; empty if it matches."""
        if status != self.status:
            return [f"status {status} != {self.status}"]
        if status != 200:
            got = body.get("error")
            return [f"error {got!r} != {self.error!r}"] if self.error and got != self.error else []
        diffs = []
        for name, want in (("decision", self.decision), ("reason", self.reason),
                           ("rule", self.rule)):
            if want is not None and body.get(name) != want:
                diffs.append(f"{name} {body.get(name)!r} != {want!r}")
        if self.decision == "deny" and body.get("rule") is not None:
            diffs.append(f"rule {body.get('rule')!r} on a deny")
        if self.categories is not None and tuple(body.get("categories") or ()) != self.categories:
            diffs.append(f"categories {body.get('categories')!r} != {list(self.categories)!r}")
        diffs.extend(self._fare_differences(body.get("fare")))
        return diffs

    def _fare_differences(self, fare: object) -> list[str]:
        if self.decision != "accept":
            return [f"fare {fare!r} on a deny"] if fare is not None else []
        if not isinstance(fare, dict):
            return [f"fare {fare!r} is not an object"]
        diffs = []
        for name, want in (("class", self.fare_class), ("amount_fen", self.amount_fen),
                           ("standard_fen", self.standard_fen)):
            if want is not None and fare.get(name) != want:
                diffs.append(f"fare.{name} {fare.get(name)!r} != {want!r}")
        return diffs


def describe_mismatch(alternatives: Sequence[Expected], status: int,
                      body: Mapping[str, Any]) -> str | None:
    """None when the response matches any alternative, else what differs from the first."""
    if not alternatives:
        return None
    first: list[str] = []
    for i, expected in enumerate(alternatives):
        diffs = expected.differences(status, body)
        if not diffs:
            return None
        if i == 0:
            first = diffs
    others = " | ".join(e.label() for e in alternatives[1:])
    return "; ".join(first) + (f" (alternatives: {others})" if others else "")


def shape_problems(request_id: object, status: int, body: Mapping[str, Any]) -> str | None:
    """What a decision (HTTP 200) lacks of protocol §4, whatever the decision: it echoes
    the request_id and carries a txn_id and a bilingual message."""
    if status != 200:
        return None
    problems = []
    if body.get("request_id") != request_id:
        problems.append(f"request_id {body.get('request_id')!r} != {request_id!r}")
    if not isinstance(body.get("txn_id"), str) or not body.get("txn_id"):
        problems.append("no txn_id")
    message = body.get("message")
    if not isinstance(message, dict) or not message.get("zh") or not message.get("en"):
        problems.append(f"message {message!r} lacks zh/en")
    return "; ".join(problems) or None
