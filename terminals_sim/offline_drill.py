"""`offline-drill`: bus readers go offline, decide alone, come back and upload; every
answer and the day's settlement are checked against outcomes known by construction.

The terminals take a bundle from the service, then play an offline period of `minutes`
that ends at the service's clock (their clocks are set back: the drill takes seconds,
not minutes). Buses only, and adult non-senior holders without registry entries: their
fare is the route's standard fare at any hour of any day, so nothing depends on when the
drill runs. The scenarios:

- offline accepts: each terminal takes two passengers per simulated minute, e-cards of
  every issuer algorithm and cards in turn — each settled at its standard fare;
- a double use across two readers: one QR shown at two readers (a screenshot) and one
  card skimmed and cloned — whichever record is uploaded first is settled, the other is
  `offline_double_use`;
- a card blocked (by the operator API) after the bundle was taken: accepted offline,
  `card_blocked` at upload, not settled;
- a reader that stays offline past its bundle's not-after: it refuses offline
  acceptance (`bundle_expired`); its records stay on it (they are dated after the
  service's clock, so they are not uploaded in the drill);
- uploads out of order (each reader's records in three batches, the last sent first)
  and twice (everything again: every record `duplicate`, with its first `txn_id`).

The settlement check compares the totals of the days touched before and after the
uploads, so the service should carry no other traffic meanwhile.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from terminals_sim.card import Card, card_id_for, make_ssn
from terminals_sim.ecard import Issuer, Phone, generate_key
from terminals_sim.keyset import SimKeys
from terminals_sim.offline_bundle import OfflineBundle, load_bundle_keys, open_bundle
from terminals_sim.offline_terminal import OfflineTerminal
from terminals_sim.signing import sign_headers

__all__ = ["Drill", "DrillOptions", "Passenger"]

BUNDLE_PATH, BATCH_PATH = "/v1/terminal/bundle", "/v1/validations:batch"
UN = "5EC0FF1E"
DOUBLE_USE = "offline_double_use"


@dataclass(frozen=True)
class DrillOptions:
    url: str
    keys_dir: Path
    admin_token: str
    terminals: int = 4
    minutes: float = 10.0
    progress: Callable[[str], None] = print


@dataclass
class Passenger:
    """An adult with a card and an e-card, made from the key set's issuers and keys."""

    card: Card
    phone: Phone

    def qr(self, now: int) -> str:
        return self.phone.qr(now)


@dataclass
class _Expect:
    """What the drill expects of one record at upload (before double use is known)."""

    token: str  # the single-use evidence: the QR, or the card and its counter
    decision: str
    reason: str
    amount_fen: int | None


@dataclass
class _Tally:
    sent: int = 0
    double_use: int = 0
    settled: int = 0
    days: dict[str, list[int]] = field(default_factory=dict)  # local date → [count, fen]
    mismatches: list[str] = field(default_factory=list)

    def check(self, what: str, got: object, want: object) -> None:
        if got != want:
            self.mismatches.append(f"{what}: got {got!r}, expected {want!r}")


class Drill:
    """The drill's terminals, passengers, expectations and tally."""

    def __init__(self, options: DrillOptions, keys: SimKeys, session: aiohttp.ClientSession,
                 ) -> None:
        self.options, self.keys, self.session = options, keys, session
        self.url = options.url.rstrip("/")
        self.tally = _Tally()
        self.expect: dict[tuple[str, str], _Expect] = {}
        self.terminals: list[OfflineTerminal] = []
        self.region, kv = next(iter(sorted(keys.card_regions().items())))
        self.master_key = keys.master_keys[(self.region, kv)]
        self.kv = kv
        self._serial = secrets.randbits(48)

    # --- set-up ----------------------------------------------------------------------

    async def bundle(self, terminal_id: str) -> OfflineBundle:
        headers = sign_headers(terminal_id, self.keys.terminal_secrets[terminal_id], "GET",
                               BUNDLE_PATH, b"", int(time.time()))
        async with self.session.get(self.url + BUNDLE_PATH, headers=headers) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise ValueError(f"bundle for {terminal_id}: HTTP {resp.status} {body[:200]!r}")
        bundle = OfflineBundle()
        bundle.apply(open_bundle(body, load_bundle_keys(self.options.keys_dir)))
        return bundle

    def passenger(self, index: int, t0: int) -> Passenger:
        self._serial += 1
        birth = dt.date(dt.datetime.fromtimestamp(t0).year - 30, 6, 15)
        ssn = make_ssn(self.region, birth, self._serial % 1000)
        card_no = f"Q{self._serial % 10**8:08d}"
        card = Card(region=self.region, ssn=ssn, card_no=card_no,
                    card_id=card_id_for(self.region, self._serial), issued="20240101",
                    expires="20991231", kv=self.kv, master_key=self.master_key)
        issuer: Issuer = self.keys.issuers[index % len(self.keys.issuers)]
        device = generate_key(issuer.alg)
        level1 = issuer.issue(bytes.fromhex(self.keys.holder_ref(ssn)),
                              int(birth.strftime("%Y%m%d")), card_no, self.region,
                              device.public_key(), iat=t0 - 86400, exp=t0 + 30 * 86400)
        return Passenger(card, Phone(level1, device, issuer.alg))

    # --- offline ---------------------------------------------------------------------

    def fare(self, terminal: OfflineTerminal) -> int:
        return int(terminal.bundle.fixed["venues"][terminal.venue]["standard_fen"])

    def qr(self, terminal: OfflineTerminal, who: Passenger, now: int, *, reason: str = "ok",
           qr: str | None = None) -> None:
        qr = qr or who.qr(now)
        self._decide(terminal, terminal.scan_qr(qr, now), qr, reason)

    def tap(self, terminal: OfflineTerminal, card: Card, now: int, *,
            reason: str = "ok") -> None:
        credential = card.tap(terminal.terminal_id, now, UN)
        token = f"{credential['card_id']}|{credential['atc']}"
        self._decide(terminal, terminal.tap(credential, now), token, reason)

    def _decide(self, terminal: OfflineTerminal, local: Any, token: str, reason: str) -> None:
        """The terminal accepts every passenger; `reason` is what the service will say."""
        record_id = terminal.records[-1]["record_id"]
        self.tally.check(f"{terminal.terminal_id} {record_id} offline",
                         (local.decision, local.reason, (local.fare or {}).get("amount_fen")),
                         ("accept", "ok", self.fare(terminal)))
        accepted = reason == "ok"
        self.expect[(terminal.terminal_id, record_id)] = _Expect(
            token, "accept" if accepted else "deny", reason,
            self.fare(terminal) if accepted else None)

    # --- uploads ---------------------------------------------------------------------

    async def upload(self, terminal: OfflineTerminal, records: list[dict[str, Any]],
                     seen: dict[tuple[str, str], str], spent: set[str]) -> None:
        body = terminal.batch_body(records)
        tid = terminal.terminal_id
        headers = sign_headers(tid, self.keys.terminal_secrets[tid], "POST", BATCH_PATH,
                               body, int(time.time()))
        async with self.session.post(self.url + BATCH_PATH, data=body, headers=headers) as resp:
            answer = await resp.json(content_type=None)
            self.tally.check(f"{tid} batch status", resp.status, 200)
        self.tally.sent += len(records)
        for record, result in zip(records, answer.get("results", []), strict=False):
            self._result(tid, record, result, seen, spent)

    def _result(self, tid: str, record: dict[str, Any], result: dict[str, Any],
                seen: dict[tuple[str, str], str], spent: set[str]) -> None:
        key = (tid, record["record_id"])
        want = self.expect[key]
        where = f"{tid} {record['record_id']}"
        if key in seen:  # uploaded before: the first answer again
            self.tally.check(f"{where} again", (result.get("status"), result.get("txn_id")),
                             ("duplicate", seen[key]))
            return
        seen[key] = str(result.get("txn_id"))
        decision, reason, amount = want.decision, want.reason, want.amount_fen
        if want.token in spent:
            decision, reason, amount = "deny", DOUBLE_USE, None
        spent.add(want.token)
        fare = result.get("fare") or {}
        self.tally.check(where, (result.get("status"), result.get("decision"),
                                 result.get("reason"), fare.get("amount_fen")),
                         ("applied", decision, reason, amount))
        self.tally.double_use += result.get("reason") == DOUBLE_USE
        if decision == "accept":
            day = self.tally.days.setdefault(record["scanned_at"][:10], [0, 0])
            day[0] += 1
            day[1] += amount or 0
            self.tally.settled += 1

    # --- the operator API ------------------------------------------------------------

    async def operator(self, method: str, path: str, doc: Any = None) -> Any:
        auth = {"Authorization": f"Bearer {self.options.admin_token}"}
        async with self.session.request(method, self.url + path, json=doc,
                                        headers=auth) as resp:
            if resp.status != 200:
                raise ValueError(f"{method} {path}: HTTP {resp.status} "
                                 f"{(await resp.read())[:200]!r}")
            return await resp.json(content_type=None)

    async def settlement(self, days: list[str]) -> dict[str, tuple[int, int]]:
        """Each day's (count, charged fen) as the service settles it now."""
        totals = {}
        for day in days:
            doc = await self.operator("GET", f"/v1/settlement?date={day}")
            totals[day] = (doc["totals"]["count"], doc["totals"]["charged_fen"])
            self.tally.check(f"settlement {day} final", doc.get("final"), False)
        return totals
