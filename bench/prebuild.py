"""The requests of a lean open-loop run, built whole before its clock starts.

Every request is unique: a fresh request_id, and a card tap with a counter no store has
seen — a new card's first tap ("fresh"), or the next tap of one of `Plan.cards` cards
("returning": request i is card i % cards, tap i // cards + 1; bench/creds.py) — or a
fresh QR (new nonce) of one of ~2,000 e-card holders, so the validator's level-1 cache
hits as it would for holders who scan several times a day. A QR costs a device
signature (~120 µs), so large runs are built by one process per CPU; whichever process
builds request i, it is the same tap of the same card.

QR freshness (§2 step 6): a QR is accepted from `gen_time - 30 s` to `gen_time + 60 s`.
The codes carry `gen_time = build start + QR_LEAD_S`, so they are valid from the build
until `QR_VALID_S` after it: the build and the run must fit in that (checked by
`qr_deadline`). The `X-Timestamp` and `scanned_at` are the build time (±300 s allowed).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bench.creds import (
    CARD_MODES,
    CARDS,
    Alg,
    CardMode,
    Credential,
    EcardHolder,
    ecard_holders,
    fresh_card_taps,
    issuer,
    qr_scans,
    random_serial,
    returning_card_taps,
    signed,
    terminal_secrets,
)
from bench.http1 import request_bytes

# "qr": ES256 issuer, ES256 and EdDSA device keys; "qr-sm2": SM2 on both levels (§2.1)
Kind = Literal["card", "qr", "qr-sm2"]
QR_KINDS: tuple[Kind, ...] = ("qr", "qr-sm2")
QR_LEAD_S = 25  # gen_time ahead of the build: the run may start up to 25 s later ...
QR_VALID_S = 80  # ... and end 80 s after the build began (60 + 25, 5 s spare)
PARALLEL_FROM = 5000  # below this many requests a process pool costs more than it saves
HOLDERS_REUSE_S = 12 * 3600  # level-1 credentials are issued for a day


@dataclass(frozen=True)
class Plan:
    """What to build: `n` requests of `kind`, signed at `now`, for `host`."""

    keys: Path
    kind: Kind
    n: int
    host: str
    terminals: list[str]
    now: int = field(default_factory=lambda: int(time.time()))
    first_serial: int = field(default_factory=random_serial)  # card taps
    card_mode: CardMode = "fresh"  # card taps: new cards, or `cards` returning ones
    cards: int = CARDS
    holders: list[EcardHolder] = field(default_factory=list)  # QR scans

    def __post_init__(self) -> None:
        if self.card_mode not in CARD_MODES:
            raise ValueError(f"card_mode {self.card_mode!r}: one of {', '.join(CARD_MODES)}")
        if self.cards < 1:
            raise ValueError(f"cards {self.cards}: at least 1")

    def describe_cards(self) -> str:
        """What the card taps are, for the "set-up" line and reports."""
        if self.card_mode == "fresh":
            return "new cards' first taps"
        again = max(self.n - self.cards, 0) / max(self.n, 1)
        taps = -(-self.n // self.cards)
        return (f"returning cards: {min(self.cards, self.n)} cards, up to {taps} "
                f"tap{'s' if taps > 1 else ''} each, {again:.0%} of taps by a card seen "
                "before")

    @property
    def gen_time(self) -> int:
        return self.now + QR_LEAD_S

    def qr_deadline(self) -> float:
        """Wall time (time.time) after which this plan's QR codes may be refused."""
        return self.now + QR_VALID_S


def build_range(plan: Plan, indices: range) -> list[bytes]:
    """Requests `indices` of the plan as HTTP/1.1 bytes (a process-pool task)."""
    secrets = terminal_secrets(plan.keys)
    return [request_bytes(plan.host, r)
            for r in signed(_credentials(plan, indices), secrets, plan.now)]


def _credentials(plan: Plan, indices: range) -> Iterator[tuple[str, Credential]]:
    if plan.kind in QR_KINDS:
        return qr_scans(plan.holders, indices, plan.gen_time, plan.terminals)
    if plan.card_mode == "returning":
        return returning_card_taps(plan.keys, indices, plan.now, plan.terminals,
                                   first_serial=plan.first_serial, pool=plan.cards)
    return fresh_card_taps(plan.keys, len(indices), plan.now, plan.terminals,
                           first_serial=plan.first_serial + indices.start)


def build(plan: Plan, processes: int) -> list[bytes]:
    """All of the plan's requests, in order, on up to `processes` processes."""
    if processes <= 1 or plan.n < PARALLEL_FROM:
        return build_range(plan, range(plan.n))
    step = -(-plan.n // processes)
    ranges = [range(start, min(start + step, plan.n)) for start in range(0, plan.n, step)]
    with ProcessPoolExecutor(max_workers=processes) as pool:
        parts = pool.map(build_range, [plan] * len(ranges), ranges)
        return [request for part in parts for request in part]


def holders(keys: Path, n: int, now: int, saved: Path | None, *, sm2: bool = False
            ) -> list[EcardHolder]:
    """`n` e-card holders, half with ES256 and half with EdDSA device keys under the
    ES256 issuer; with `sm2`, SM2 device keys under the SM2 issuer (an all-SM2 QR).

    With `saved`, the same holders serve every step of a benchmark (loaded from there if
    it holds enough of them, issued by this key set less than 12 h ago; else made and
    saved there): the validator's level-1 cache then stays warm from step to step, as
    in service, instead of every step starting with thousands of unseen credentials.
    """
    issuer_alg: Alg = "SM2" if sm2 else "ES256"
    kid = issuer(keys, issuer_alg).kid.hex()
    if saved is not None and saved.exists():
        doc = json.loads(saved.read_text())
        if doc["issuer_kid"] == kid and now - doc["made_at"] < HOLDERS_REUSE_S and \
                len(doc["holders"]) >= n:
            return [EcardHolder(bytes.fromhex(level1), bytes.fromhex(key), alg)
                    for level1, key, alg in doc["holders"][:n]]
    made = ecard_holders(keys, n, now, issuer_alg=issuer_alg,
                         device_algs=("SM2",) if sm2 else ("ES256", "EdDSA"))
    if saved is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        rows = [[h.level1.hex(), h.device_key.hex(), h.alg] for h in made]
        temporary = saved.with_suffix(".tmp")
        temporary.write_text(json.dumps({"issuer_kid": kid, "made_at": now, "holders": rows}))
        os.chmod(temporary, 0o600)  # private keys, if only throw-away ones
        temporary.replace(saved)
    return made
