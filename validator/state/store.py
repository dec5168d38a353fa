"""The store's roles, and the values of the atomic decision commit.

A validation reads a `Snapshot` (one round trip), the pure code decides, and the
decision is written with `commit` (one round trip). The commit re-checks the *guards*
the decision relied on (nonce unseen, counter higher, cap and capacity not reached,
not entered today, companion window open) and applies all effects, the idempotency
record and the ledger record at once — or nothing, answering `Conflict`, after which
the pipeline reads again and decides again. Guards are only needed for facts that a
concurrent commit can turn false; "cap reached", "already entered" and the like only
ever become more true within a day, so a deny based on them needs none.

Callers depend on the role they use, each a small protocol:

| role | used by | methods |
|---|---|---|
| `DecisionStore` | the pipeline (`decide.py`), readiness | `snapshot`, `commit`, `ping` |
| `RegistryStore` | operator API, CLI, holder import | holders and blocks |
| `LedgerReader` | settlement, what-if, lookup, live feed | `ledger_read` |
| `AuditLog` | operator changes, the audit view | `audit_append`, `audit_read` |
| `FeedStore` | the dashboard's live feed | lease, board, error stream |
| `OperatorStore` | `holders/changes.py` | `RegistryStore` + `AuditLog` |

`Store` is all of them plus `close`: what `open_store` answers and the composition root
owns. An implementation may be one class with every role (the memory and Redis stores
are), and translates every foreign error once, at its own boundary, into
`StoreUnavailable` (and raises nothing else of its own) when it cannot be reached; the
web layer turns that into 503 `store_unavailable`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

from validator.policy.types import Category
from validator.values import value

NONCE_TTL_S = 300  # protocol §2: remember a spent nonce for at least 120 s
IDEMPOTENCY_TTL_S = 24 * 3600  # protocol §4: identical answer within 24 h
USAGE_TTL_S = 3 * 24 * 3600  # per-day counters outlive their day, then expire
FEED_ERRORS_KEPT = 10_000  # entries (one per process and tick with errors): hours of them

BlockKind = Literal["card", "holder"]


class StoreUnavailable(Exception):
    """The state store cannot be reached (or answered garbage): retry later."""


@dataclass(frozen=True, slots=True)
class Block:
    reason: str | None = None
    until: dt.date | None = None  # inclusive; None = until removed

    def active_on(self, day: dt.date) -> bool:
        return self.until is None or day <= self.until


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The idempotency record of a request: body hash and the exact response bytes."""

    body_sha256: str
    response: bytes


@value
class SnapshotQuery:
    terminal_id: str
    request_id: str
    local_date: dt.date
    holder_ref: str | None = None
    card_no: str | None = None
    card_id: str | None = None
    nonce: bytes | None = None
    spot_id: str | None = None  # the venue's spot, for entries and capacity


@value
class Snapshot:
    stored: StoredResponse | None = None  # idempotency record for (terminal, request_id)
    nonce_seen: bool = False
    atc_high: int | None = None  # highest counter seen for card_id; None = never tapped
    card_block: Block | None = None
    holder_block: Block | None = None
    categories: tuple[Category, ...] = ()  # eligibility registry; () if unknown holder
    concession_rides_today: int = 0
    entered_today: bool = False
    spot_entries_today: int = 0
    # When the holder's last accepted primary on this terminal opened a companion
    # window (Unix s), if that window is still stored and unused; the pipeline compares
    # it with its clock, so stores need no notion of the policy's window length.
    companion_opened_at: float | None = None


@value
class Commit:
    """One decision's writes. Fields left at None/False neither guard nor write."""

    terminal_id: str
    request_id: str
    body_sha256: str  # hex
    response: bytes  # served verbatim to retries of the same request
    ledger: bytes  # the ledger record (JSON), appended to `local_date`'s ledger
    local_date: dt.date
    holder_ref: str | None = None
    # A decision made before its credential was verified has no holder_ref, but the
    # holder its credential names (unverified: `Verifier.named_holder`), a pure function
    # of the request's bytes. A store that keeps each holder's records together (a Redis
    # Cluster's slot groups) keeps this request's records with that holder, where a
    # retry of the same body — which may get past the check that failed — looks too.
    named_holder: str | None = None
    nonce: bytes | None = None  # guard: (holder_ref, nonce) unseen; then spend it
    card_id: str | None = None
    atc: int | None = None  # guard: stored high < atc (or none); then high := atc
    concession_ride_cap: int | None = None  # guard: rides today < cap; then +1
    spot_id: str | None = None
    spot_capacity: int | None = None  # guard: entries today < capacity; then +1
    concession_entry: bool = False  # guard: not entered (holder, spot) today; then set
    # guard: the (terminal, holder) window still holds exactly this value; then close it
    companion_use: float | None = None
    # open a (terminal, holder) window stamped with this time, kept for `companion_ttl_s`
    companion_open_at: float | None = None
    companion_ttl_s: int = 120
    # A speculative commit was decided without a snapshot, as if the store knew nothing
    # of this holder. The guards above cover every fact such a decision relied on but
    # three: guard that the holder has no registry entry and that neither `card_no` nor
    # the holder is blocked (else Conflict(Guard.STATUS), and the pipeline reads and decides).
    assume_no_status: bool = False
    card_no: str | None = None
    # How long the spent nonce and the idempotency record are kept: the protocol's
    # minimums for a live scan; an offline record's upload keeps both until no upload of
    # the same credential or record can arrive any more (validator/offline/).
    nonce_ttl_s: int = NONCE_TTL_S
    idempotency_ttl_s: int = IDEMPOTENCY_TTL_S


@value
class Committed:
    ledger_id: str


@value
class Duplicate:
    """An idempotency record already exists for (terminal, request_id)."""

    stored: StoredResponse


class Guard(StrEnum):
    """What a failed commit found changed, in the order the guards are checked."""

    STATUS = "status"  # a speculative commit's holder has a registry entry or a block
    NONCE = "nonce"
    ATC = "atc"
    CONCESSION_RIDE = "concession_ride"
    CAPACITY = "capacity"
    ENTERED = "entered"
    COMPANION = "companion"


@value
class Conflict:
    """A guard failed: a concurrent commit changed what the decision relied on."""

    guard: Guard


CommitResult = Committed | Duplicate | Conflict


class DecisionStore(Protocol):
    """The decision path: read what a decision needs, write it atomically."""

    async def snapshot(self, query: SnapshotQuery) -> Snapshot: ...

    async def commit(self, commit: Commit) -> CommitResult: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless a decision could be read and written now."""
        ...


class RegistryStore(Protocol):
    """The eligibility registry and the block lists (operator writes, snapshot reads)."""

    async def get_holder(self, holder_ref: str) -> tuple[Category, ...] | None: ...

    async def put_holders(
        self, records: list[tuple[str, tuple[Category, ...]]]
    ) -> list[bool]:
        """Upsert a batch; answers, per record, True if it was created (else updated)."""
        ...

    async def delete_holder(self, holder_ref: str) -> bool: ...

    async def list_holders(
        self, after: str | None = None, count: int = 1000
    ) -> list[tuple[str, tuple[Category, ...]]]:
        """Up to `count` registry records as (holder_ref, categories), in ascending order
        of holder_ref, the first after `after` (exclusive): offline bundles read them."""
        ...

    async def get_block(self, kind: BlockKind, ident: str) -> Block | None: ...

    async def put_block(self, kind: BlockKind, ident: str, block: Block) -> Block | None:
        """Set a block; answers the previous one (None if there was none)."""
        ...

    async def delete_block(self, kind: BlockKind, ident: str) -> Block | None:
        """Remove a block; answers the removed one (None if there was none)."""
        ...

    async def list_blocks(
        self, kind: BlockKind, after: str | None = None, count: int = 100
    ) -> list[tuple[str, Block]]:
        """Up to `count` blocks of `kind` as (id, block), in ascending order of id, the
        first id after `after` (exclusive): a page of the block list for operators."""
        ...


class LedgerReader(Protocol):
    """The ledger, read back (the commit appends to it)."""

    async def ledger_read(
        self, day: dt.date, after: str | None = None, count: int = 1000
    ) -> list[tuple[str, bytes]]:
        """Records of `day`'s ledger in commit order, after id `after` (exclusive)."""
        ...


class AuditLog(Protocol):
    """The append-only log of operator changes."""

    async def audit_append(self, entry: bytes) -> str: ...

    async def audit_read(self, count: int = 100) -> list[tuple[str, bytes]]:
        """The newest `count` audit entries, newest first."""
        ...


class FeedStore(Protocol):
    """The live feed's coordination: one process of a deployment reads the ledger."""

    async def feed_lease(self, holder: str, ttl_s: float) -> bool:
        """Take the lease if it is free, or keep it if `holder` has it: True if `holder`
        holds it for `ttl_s` from now, False if another holder does."""
        ...

    async def feed_release(self, holder: str) -> None:
        """Give the lease up if `holder` has it (at shutdown: a successor need not wait)."""
        ...

    async def feed_publish(self, board: bytes, ttl_s: float) -> None:
        """Publish the leader's board (one JSON document), readable for `ttl_s`."""
        ...

    async def feed_board(self) -> bytes | None:
        """The latest published board, or None if none was published within its ttl."""
        ...

    async def feed_errors_add(self, entry: bytes) -> str:
        """Append one process's HTTP errors of a tick; the stream keeps about the newest
        `FEED_ERRORS_KEPT` entries."""
        ...

    async def feed_errors_read(
        self, after: str | None = None, count: int = 1000
    ) -> list[tuple[str, bytes]]:
        """Entries of the error stream in order, after id `after` (exclusive)."""
        ...


class OperatorStore(RegistryStore, AuditLog, Protocol):
    """An operator's change to the registry or a block list, and its audit entry."""


class Store(DecisionStore, RegistryStore, LedgerReader, AuditLog, FeedStore, Protocol):
    """Every role, and the lifecycle: what `open_store` answers and its owner closes."""

    async def close(self) -> None: ...
