"""The reference offline terminal: decides alone from a verified bundle and keeps every
decision as an upload record (protocol §8.3, §8.4).

Written from docs/protocol.md alone, as a vendor would port it: it imports nothing of
`validator`. A terminal holds an `OfflineBundle` (offline_bundle.py, already verified
and applied), its own clock (every method takes `now`, whole Unix seconds), and its
local memories: the QR nonces of the last 120 s, each card's highest counter, each
card's accepts today (the offline allowance), and each holder's usage today on this
terminal (concession rides, spot entries, the companion window).

    terminal = OfflineTerminal("T-BUS-K1-001", bundle)
    decision = terminal.scan_qr(qr_text, now)          # or terminal.tap(credential, now)
    body = terminal.batch_body()                       # POST /v1/validations:batch

Usage is keyed by what the terminal can see: an e-card's `sub` (the holder_ref) and a
card's `card_id`. A terminal cannot tell that a card and an e-card belong to one holder
(that takes the pepper, §8.2), so one holder using both is counted twice over here; the
service, which can, decides the records again at upload.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from terminals_sim.card import ssn_check_char
from terminals_sim.offline_bundle import OfflineBundle
from terminals_sim.offline_policy import Categories, LocalPolicy, Usage, Verdict
from terminals_sim.offline_qr import Denied, QrFacts, trust_keys, verify_qr

__all__ = ["LocalDecision", "OfflineTerminal"]

NONCE_MEMORY_S = 120  # §8.3: every (sub, nonce) seen within the last 120 s
MAX_ATC = 65535
_CARD_FIELDS = {"region": r"[0-9]{6}", "card_no": r"[A-Z0-9]{9}",
                "card_id": r"[0-9]{6}D156000005[0-9A-F]{16}", "issued": r"[0-9]{8}",
                "expires": r"[0-9]{8}", "un": r"[0-9A-Fa-f]{8}",
                "cryptogram": r"[0-9A-Fa-f]{16}", "ssn": r"[0-9]{17}[0-9X]"}


@dataclass(frozen=True)
class LocalDecision:
    """What the gate shows: a decision as §4 words it, decided by the terminal."""

    decision: str  # "accept" | "deny"
    reason: str
    fare: dict[str, Any] | None = None
    rule: str | None = None
    categories: tuple[str, ...] = ()


@dataclass
class _HolderDay:
    """One holder's usage on this terminal during one local day."""

    rides: int = 0  # age-based concession rides (the bus's daily cap)
    entered: bool = False  # a free or half entry at this spot
    primary_at: int | None = None  # last accepted primary; None once a companion used it


@dataclass
class OfflineTerminal:
    """One gate or bus reader deciding offline."""

    terminal_id: str
    bundle: OfflineBundle
    record_prefix: str = field(default_factory=lambda: secrets.token_hex(4))
    records: list[dict[str, Any]] = field(default_factory=list)
    _nonces: dict[tuple[bytes, bytes], int] = field(default_factory=dict)
    _atc: dict[str, int] = field(default_factory=dict)
    _allowance: dict[tuple[str, dt.date], int] = field(default_factory=dict)
    _usage: dict[tuple[str, dt.date], _HolderDay] = field(default_factory=dict)
    _counter: int = 0

    # --- the bundle's facts ----------------------------------------------------------

    @property
    def venue(self) -> str:
        return str(self.bundle.fixed["terminals"][self.terminal_id])

    def local(self, now: int) -> dt.datetime:
        """`now` in the city's local time (the bundle's offset: no daylight saving)."""
        tz = dt.timezone(dt.timedelta(seconds=self.bundle.fixed["utc_offset_s"]))
        return dt.datetime.fromtimestamp(now, tz)

    # --- decisions -------------------------------------------------------------------

    def scan_qr(self, qr: str, now: int, *, companion: bool = False) -> LocalDecision:
        """Decide an e-card QR at the terminal's clock `now`, and record it."""
        credential = {"type": "essc_qr", "qr": qr}
        try:
            decision = self._qr(qr, now, companion)
        except Denied as denied:
            decision = LocalDecision("deny", denied.reason)
        return self._keep(credential, now, companion, decision)

    def tap(self, credential: dict[str, Any], now: int, *,
            companion: bool = False) -> LocalDecision:
        """Decide a card tap (the §3 object the card answered at `now`), and record it."""
        try:
            decision = self._tap(credential, now, companion)
        except Denied as denied:
            decision = LocalDecision("deny", denied.reason)
        return self._keep(dict(credential), now, companion, decision)

    def _usable(self, now: int) -> LocalPolicy:
        if not self.bundle.usable_at(now) or self.terminal_id not in \
                self.bundle.fixed.get("terminals", {}):
            raise Denied("bundle_expired")
        return LocalPolicy(self.bundle.fixed, self.venue)

    def _qr(self, qr: str, now: int, companion: bool) -> LocalDecision:
        policy = self._usable(now)
        local = self.local(now)
        facts = verify_qr(qr, trust_keys(self.bundle.fixed["trust"]), now, local.date())
        self._spend_nonce(facts, now)
        self._blocks(facts.card_no, local.date(), holder_ref=facts.sub)
        categories = self.bundle.categories(facts.sub)
        return self._decide(policy, "q|" + facts.sub.hex(), local, facts.birth_date,
                            categories, policy.resident(facts.region), companion)

    def _spend_nonce(self, facts: QrFacts, now: int) -> None:
        """§2 step 7 against this terminal's memory; the nonce is used up either way."""
        for key, seen in list(self._nonces.items()):
            if now - seen > NONCE_MEMORY_S:
                del self._nonces[key]
        key = (facts.sub, facts.nonce)
        if key in self._nonces:
            raise Denied("replayed")
        self._nonces[key] = now

    def _blocks(self, card_no: str, today: dt.date, *, holder_ref: bytes | None) -> None:
        blocked, until = self.bundle.card_block_until(card_no)
        if blocked and (until is None or today <= until):
            raise Denied("card_blocked")
        if holder_ref is not None:
            blocked, until = self.bundle.holder_block_until(holder_ref)
            if blocked and (until is None or today <= until):
                raise Denied("holder_blocked")

    def _tap(self, cred: dict[str, Any], now: int, companion: bool) -> LocalDecision:
        policy = self._usable(now)
        local = self.local(now)
        today = local.date()
        birth, expires = _card_checks(cred, today)
        card_id, atc = str(cred["card_id"]), int(cred["atc"])
        high = self._atc.get(card_id)
        if high is not None and atc <= high:
            raise Denied("replayed" if atc == high else "card_clone_suspected")
        self._atc[card_id] = atc
        allowance = self.bundle.fixed["card_allowance"]
        if self._allowance.get((card_id, today), 0) >= allowance:
            raise Denied("offline_allowance_reached")
        if expires < today:
            raise Denied("card_expired")
        self._blocks(str(cred["card_no"]), today, holder_ref=None)
        # offline a card tap gets no registry categories (§8.2): age and residence only
        decision = self._decide(policy, "c|" + card_id, local, birth, [],
                                policy.resident(str(cred["region"])), companion)
        if decision.decision == "accept":
            self._allowance[(card_id, today)] = self._allowance.get((card_id, today), 0) + 1
        return decision

    def _decide(self, policy: LocalPolicy, holder: str, local: dt.datetime, birth: dt.date,
                categories: Categories, resident: bool, companion: bool) -> LocalDecision:
        now = int(local.timestamp())
        day = self._usage.setdefault((holder, local.date()), _HolderDay())
        primary_open = day.primary_at is not None and 0 <= now - day.primary_at <= \
            policy.window_s
        verdict: Verdict = policy.evaluate(local, birth, categories, resident, companion,
                                           Usage(day.rides, day.entered, primary_open))
        if not verdict.accepted:
            return LocalDecision("deny", verdict.reason)
        day.rides += verdict.concession_ride
        day.entered = day.entered or verdict.concession_entry
        day.primary_at = None if companion else now
        return LocalDecision("accept", "ok", verdict.fare, verdict.rule, verdict.categories)

    # --- records ---------------------------------------------------------------------

    def _keep(self, credential: dict[str, Any], now: int, companion: bool,
              decision: LocalDecision) -> LocalDecision:
        self._counter += 1
        record: dict[str, Any] = {
            "record_id": f"{self.record_prefix}-{self._counter:06d}",
            "scanned_at": self.local(now).isoformat(),
            "credential": credential,
            "terminal_decision": {"decision": decision.decision, "reason": decision.reason}}
        if companion:
            record["companion"] = True
        self.records.append(record)
        return decision

    def batch_body(self, records: list[dict[str, Any]] | None = None) -> bytes:
        """The upload body (§8.4) of `records`, by default every record kept."""
        chosen = self.records if records is None else records
        return json.dumps({"records": chosen}, ensure_ascii=False).encode()


def _card_checks(cred: dict[str, Any], today: dt.date) -> tuple[dt.date, dt.date]:
    """§3 steps 1–2 (field formats, the SSN, dates, version): (birth date, expiry)."""
    for name, pattern in _CARD_FIELDS.items():
        if not isinstance(cred.get(name), str) or not re.fullmatch(pattern, cred[name]):
            raise Denied("malformed_credential")
    kv, atc = cred.get("kv"), cred.get("atc")
    if type(kv) is not int or not 1 <= kv <= 255 or type(atc) is not int \
            or not 0 <= atc <= MAX_ATC:
        raise Denied("malformed_credential")
    ssn = cred["ssn"]
    if ssn_check_char(ssn[:17]) != ssn[17] or not cred["card_id"].startswith(cred["region"]):
        raise Denied("malformed_credential")
    try:
        birth, issued, expires = (_ymd(ssn[6:14]), _ymd(cred["issued"]),
                                  _ymd(cred["expires"]))
    except ValueError:
        raise Denied("malformed_credential") from None
    if birth > today or issued > expires:
        raise Denied("malformed_credential")
    if cred.get("version") != "3.00":
        raise Denied("unsupported_card_version")
    return birth, expires


def _ymd(text: str) -> dt.date:
    return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
