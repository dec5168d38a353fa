"""Every name in the store's key space, in one place (Redis keys; the memory store reuses them).

All keys start with the schema prefix `v1:` so that a later layout can live beside this one
during a migration. Components are values the service has already validated (terminal
ids, request ids, hex pseudonyms, card numbers, spot ids, ISO dates), none of which
contains `:`. No raw SSN, name or token ever becomes part of a key: a holder is always
its `holder_ref` pseudonym (protocol §1).

Entry ids of the ledger and audit streams are Redis stream ids, `<ms>-<seq>`; the memory
store mints ids of the same shape so that paging works identically on both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from validator.state.store import Commit, SnapshotQuery
from validator.values import value

PREFIX = "v1:"

AUDIT = PREFIX + "audit"
# The live feed (validator/web/dashboard/feed.py): who reads the ledger, what it saw, and the
# HTTP errors every process answered (no personal data in any of them).
FEED_LEASE = PREFIX + "feed:lease"
FEED_BOARD = PREFIX + "feed:board"
FEED_ERRORS = PREFIX + "feed:errors"
# Which listing indexes are known complete (validator/state/reindex.py): a hash.
INDEXED = PREFIX + "indexed"


def idempotency(terminal_id: str, request_id: str) -> str:
    """The stored response of (terminal, request_id), protocol §4."""
    return f"{PREFIX}idem:{terminal_id}:{request_id}"


def nonce(holder_ref: str, nonce_bytes: bytes) -> str:
    """A spent QR nonce, protocol §2 step 7 (the nonce is random, not personal)."""
    return f"{PREFIX}nonce:{holder_ref}:{nonce_bytes.hex()}"


def atc(card_id: str) -> str:
    """The highest application transaction counter seen for a card, protocol §3."""
    return f"{PREFIX}atc:{card_id}"


def rides(day: dt.date, holder_ref: str) -> str:
    """Age-based concession rides of a holder on a local day."""
    return f"{PREFIX}rides:{day.isoformat()}:{holder_ref}"


def entered(day: dt.date, spot_id: str, holder_ref: str) -> str:
    """Set once a holder made a free or half entry at a spot on a local day."""
    return f"{PREFIX}entered:{day.isoformat()}:{spot_id}:{holder_ref}"


def capacity(day: dt.date, spot_id: str) -> str:
    """Entries (every fare class) at a spot on a local day."""
    return f"{PREFIX}cap:{day.isoformat()}:{spot_id}"


def companion(terminal_id: str, holder_ref: str) -> str:
    """The open companion window of a holder's last primary accept on a terminal."""
    return f"{PREFIX}companion:{terminal_id}:{holder_ref}"


def holder(holder_ref: str) -> str:
    """The eligibility registry record (categories) of a holder."""
    return f"{PREFIX}holder:{holder_ref}"


def holder_index() -> str:
    """The holder_ref of every registry record, in a sorted set (score 0, ordered by
    ref): what `list_holders` pages through without scanning the key space."""
    return f"{PREFIX}holders"


def block(kind: str, ident: str) -> str:
    """A block of a card (`card`, by card number) or of a holder (`holder`, by ref)."""
    return f"{PREFIX}block:{kind}:{ident}"


def block_index(kind: str) -> str:
    """The ids of every block of a kind, in a sorted set (score 0, ordered by id): what
    `list_blocks` pages through without scanning the key space."""
    return f"{PREFIX}blocks:{kind}"


def ledger(day: dt.date) -> str:
    """The ledger stream of one local day (`YYYY-MM-DD`)."""
    return f"{PREFIX}ledger:{day.isoformat()}"


_ENTRY_ID = re.compile(r"(\d{1,20})-(\d{1,20})")


def parse_entry_id(entry_id: str) -> tuple[int, int]:
    """`<ms>-<seq>` → (ms, seq); ValueError for anything else (a caller's mistake)."""
    match = _ENTRY_ID.fullmatch(entry_id)
    if match is None or max(int(match[1]), int(match[2])) >= 2**64:
        raise ValueError(f"not a stream entry id: {entry_id!r}")
    return int(match[1]), int(match[2])


@value
class SnapshotKeys:
    """The keys a snapshot reads; None where the query lacks the id that names one."""

    stored: str
    nonce: str | None
    atc: str | None
    card_block: str | None
    holder_block: str | None
    holder: str | None
    rides: str | None
    entered: str | None
    capacity: str | None
    companion: str | None

    @classmethod
    def of(cls, q: SnapshotQuery) -> SnapshotKeys:
        ref, spot, day = q.holder_ref, q.spot_id, q.local_date
        return cls(
            stored=idempotency(q.terminal_id, q.request_id),
            nonce=None if ref is None or q.nonce is None else nonce(ref, q.nonce),
            atc=None if q.card_id is None else atc(q.card_id),
            card_block=None if q.card_no is None else block("card", q.card_no),
            holder_block=None if ref is None else block("holder", ref),
            holder=None if ref is None else holder(ref),
            rides=None if ref is None else rides(day, ref),
            entered=None if ref is None or spot is None else entered(day, spot, ref),
            capacity=None if spot is None else capacity(day, spot),
            companion=None if ref is None else companion(q.terminal_id, ref),
        )

    def present(self) -> dict[str, str]:
        """Field name → key, for the keys this snapshot reads."""
        return {name: key for name in _SNAPSHOT_FIELDS
                if (key := getattr(self, name)) is not None}


_SNAPSHOT_FIELDS = tuple(f.name for f in dataclasses.fields(SnapshotKeys))


def commit_keys(c: Commit) -> dict[str, str]:
    """The keys a commit reads and writes, by name; only those it has a guard or an
    effect for (ValueError if a guard lacks the id that names its key: a caller's
    mistake).

    Both stores derive them here, so that which guard applies when is decided once; the
    Redis store passes them to the commit script, which reads them by these names:
    `idempotency`, `ledger`, `nonce`, `atc`, `rides`, `capacity`, `entered`,
    `companion`, and a speculative commit's status guard — `card_block`,
    `holder_block`, `registry`, none of which may exist.
    """
    ref, spot, day = c.holder_ref, c.spot_id, c.local_date
    named = {"idempotency": idempotency(c.terminal_id, c.request_id), "ledger": ledger(day)}
    if c.nonce is not None:
        named["nonce"] = nonce(_need(ref, "nonce"), c.nonce)
    if c.atc is not None:
        named["atc"] = atc(_need(c.card_id, "atc"))
    if c.concession_ride_cap is not None:
        named["rides"] = rides(day, _need(ref, "ride"))
    if c.spot_capacity is not None:
        named["capacity"] = capacity(day, _need(spot, "capacity"))
    if c.concession_entry:
        named["entered"] = entered(day, _need(spot, "entered"), _need(ref, "entered"))
    if c.companion_use is not None or c.companion_open_at is not None:
        named["companion"] = companion(c.terminal_id, _need(ref, "companion"))
    if c.assume_no_status:
        named["card_block"] = block("card", _need(c.card_no, "status"))
        named["holder_block"] = block("holder", _need(ref, "status"))
        named["registry"] = holder(_need(ref, "status"))
    return named


def _need(part: str | None, guard: str) -> str:
    if part is None:
        raise ValueError(f"a commit with a {guard} guard needs the id its key is named by")
    return part
