"""The key layout of a Redis Cluster: which keys share a hash slot, and why.

A commit is one Lua script, and a script may only touch keys of one hash slot. So every
key one holder's decision touches carries the hash tag of the holder's *group*
(`{g17}`): `GROUPS` groups, a holder's fixed by its `holder_ref`. The ledger is a stream
per group per day, in the group's slot, so the script appends to it atomically with the
decision, and the writes of a busy day spread over `GROUPS` streams (and as many slots,
which the cluster spreads over its primaries). A group rather than a tag per holder:
readers of a day (settlement, what-if, lookup, the live feed) read `GROUPS` streams, not
one per holder.

- **Holder state** (nonce, card counter, rides, entered, companion window, registry
  entry, holder block, reservation marks) and the idempotency record of a request that
  names a holder: the holder's group. A card's counter is keyed by card id within the
  holder's group: a card's holder is fixed by the SSN on it. A retry of a request
  carries the same credential, so it reaches the same group and finds its record.
- **A request denied before its credential was verified** (clock skew, a bad
  signature, a credential not yet valid): the group of the holder its credential
  *names* (`Commit.named_holder`: a QR's level-1 `sub`, a card's SSN field, read
  unverified), for its idempotency and ledger records — or the terminal's, if the
  credential cannot be read that far. Either is a pure function of the request's bytes,
  so a retry of the same body reaches the same group, even one that now gets past the
  check that failed (and is then verified as the holder it named): no read of another
  slot per decision. Naming a holder plants nothing in that holder's state: a record is
  keyed by (terminal, request_id), which only the authenticated terminal writes, and
  the ledger record of such a deny carries no holder.
- **Card blocks**, keyed by card number: the card number's group (listed and read
  there), and a copy in every group, so that whichever holder's commit a card's scan
  reaches checks the block atomically in its own slot: no registration of a card with
  its holder first. A block is a rare operator action; `GROUPS` small copies of it are
  cheaper than a round trip on every new card's first tap.
- **Spot capacity**: the spot's own slot (`{s:S01}`), with its reservations.
- Registry and block indexes, audit log, live feed: a slot each.

The schema prefix is `v2:`: these names are not the single-Redis layout's (`keys.py`,
`v1:`), so both can live side by side while a deployment moves from one to the other.
No key holds an SSN, name or token (protocol §1): a holder is its `holder_ref`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import lru_cache

from validator.state.store import BlockKind, Commit

PREFIX = "v2:"
GROUPS = 64  # slots of holder state and ledger streams; 3 primaries hold 21-22 each

AUDIT = PREFIX + "{audit}:audit"
FEED_LEASE = PREFIX + "{feed}:lease"
FEED_BOARD = PREFIX + "{feed}:board"
FEED_ERRORS = PREFIX + "{feed}:errors"
HOLDER_INDEX = PREFIX + "{registry}:holders"


@lru_cache(maxsize=65_536)
def group_of(ident: str) -> int:
    """The group of a holder_ref, card number or terminal id (stable across processes)."""
    return int.from_bytes(hashlib.blake2b(ident.encode(), digest_size=4).digest(),
                          "big") % GROUPS


def tag(group: int) -> str:
    return f"{{g{group}}}"


# Every key of a group starts with its prefix, `v2:{g17}:`; made once, not per key.
_GROUP_PREFIX = tuple(f"{PREFIX}{tag(group)}:" for group in range(GROUPS))


def request_group(terminal_id: str, holder_ref: str | None) -> int:
    """Where a request's idempotency and ledger records live: its holder's group, or
    the terminal's when the request names no holder."""
    return group_of(holder_ref if holder_ref is not None else terminal_id)


def commit_group(c: Commit) -> int:
    """The group of a commit's records: its holder's, else the one its credential names."""
    return request_group(c.terminal_id, c.holder_ref if c.holder_ref is not None
                         else c.named_holder)


def idempotency(group: int, terminal_id: str, request_id: str) -> str:
    return f"{_GROUP_PREFIX[group]}idem:{terminal_id}:{request_id}"


def ledger(group: int, day: dt.date) -> str:
    return f"{_GROUP_PREFIX[group]}ledger:{day.isoformat()}"


def merged_id(stream_id: str, group: int) -> str:
    """A group stream's entry id as an id of the day's merged ledger: `<ms>-<seq·G + g>`,
    so that ids order by time, then by sequence, then by group, and parse as stream ids."""
    ms, _, seq = stream_id.partition("-")
    return f"{ms}-{int(seq) * GROUPS + group}"


def split_id(entry_id: str) -> tuple[int, int, int]:
    """A merged id → (ms, seq, group)."""
    ms, _, rest = entry_id.partition("-")
    seq, group = divmod(int(rest), GROUPS)
    return int(ms), seq, group


def _of(holder_ref: str) -> str:
    """The key prefix of a holder's group."""
    return _GROUP_PREFIX[group_of(holder_ref)]


def nonce(holder_ref: str, nonce_bytes: bytes) -> str:
    return f"{_of(holder_ref)}nonce:{holder_ref}:{nonce_bytes.hex()}"


def atc(holder_ref: str, card_id: str) -> str:
    return f"{_of(holder_ref)}atc:{holder_ref}:{card_id}"


def rides(holder_ref: str, day: dt.date) -> str:
    return f"{_of(holder_ref)}rides:{holder_ref}:{day.isoformat()}"


def entered(holder_ref: str, day: dt.date, spot_id: str) -> str:
    return f"{_of(holder_ref)}entered:{holder_ref}:{day.isoformat()}:{spot_id}"


def companion(holder_ref: str, terminal_id: str) -> str:
    return f"{_of(holder_ref)}companion:{holder_ref}:{terminal_id}"


def holder(holder_ref: str) -> str:
    return f"{_of(holder_ref)}holder:{holder_ref}"


def reservation_mark(holder_ref: str, token: str) -> str:
    """Set by the commit that used a capacity reservation (a reconciler looks for it)."""
    return f"{_of(holder_ref)}reserved:{holder_ref}:{token}"


def block(kind: BlockKind, ident: str) -> str:
    """A holder block in the holder's group; a card block in the card number's."""
    return f"{_of(ident)}block:{kind}:{ident}"


def card_block_mirror(holder_ref: str, card_no: str) -> str:
    """The copy of a card's block in a holder's group: what that holder's commit checks."""
    return card_block_copy(group_of(holder_ref), card_no)


def card_block_copy(group: int, card_no: str) -> str:
    """A card's block in one group; `put_block` writes one in every group."""
    return f"{_GROUP_PREFIX[group]}cardblock:{card_no}"


def block_index(kind: BlockKind) -> str:
    return f"{PREFIX}{{blocks}}:{kind}"


def capacity(spot_id: str, day: dt.date) -> str:
    """Entries (every fare class, reservations included) at a spot on a local day."""
    return f"{PREFIX}{{s:{spot_id}}}:cap:{day.isoformat()}"


def reservations(spot_id: str, day: dt.date) -> str:
    """The spot's open reservations of a day: a sorted set, scored by deadline (ms)."""
    return f"{PREFIX}{{s:{spot_id}}}:reservations:{day.isoformat()}"


def commit_keys(c: Commit, reservation: str | None) -> dict[str, str]:
    """The keys of `c` that live in its request's slot, by commit.lua's names.

    The card's block is its mirror in the holder's slot; the card itself and the spot's
    capacity live elsewhere: the cluster store reads them first and passes what it
    found (script.commit_call's `facts`).
    """
    ref, day = c.holder_ref, c.local_date
    group = commit_group(c)
    named = {"idempotency": idempotency(group, c.terminal_id, c.request_id),
             "ledger": ledger(group, day)}
    if ref is None:
        if _guarded(c):
            raise ValueError("a commit with a guard needs the holder its keys are named by")
        return named
    _holder_keys(c, ref, named)
    if reservation is not None:
        named["reservation"] = reservation_mark(ref, reservation)
    return named


def _holder_keys(c: Commit, ref: str, named: dict[str, str]) -> None:
    day = c.local_date
    if c.nonce is not None:
        named["nonce"] = nonce(ref, c.nonce)
    if c.atc is not None:
        if c.card_id is None:
            raise ValueError("a commit with an atc guard needs its card id")
        named["atc"] = atc(ref, c.card_id)
    if c.concession_ride_cap is not None:
        named["rides"] = rides(ref, day)
    if c.concession_entry:
        if c.spot_id is None:
            raise ValueError("a commit with an entered guard needs its spot")
        named["entered"] = entered(ref, day, c.spot_id)
    if c.companion_use is not None or c.companion_open_at is not None:
        named["companion"] = companion(ref, c.terminal_id)
    if c.assume_no_status:
        named["holder_block"] = block("holder", ref)
        named["registry"] = holder(ref)
        if c.card_no is not None:
            named["card_block"] = card_block_mirror(ref, c.card_no)


def _guarded(c: Commit) -> bool:
    return any((c.nonce is not None, c.atc is not None, c.concession_ride_cap is not None,
                c.spot_capacity is not None, c.concession_entry, c.assume_no_status,
                c.companion_use is not None, c.companion_open_at is not None))
