"""The decision pipeline: verify → holder status → policy → one atomic commit.

Verification is pure CPU and touches no state. The pipeline then reads a `Snapshot`
(idempotency record, spent nonce or card counter, blocks, registry categories, usage
today) in one round trip, decides with pure code, and commits the decision with its
guards, effects, idempotency record and ledger record in one round trip. If a guard
failed because a concurrent request got there first, it reads and decides again.

Denies found before any holder state is involved (clock skew, a forged or malformed
credential) skip the snapshot: their commit is only the idempotency and ledger records,
with the holder the credential names unverified (`Commit.named_holder`, where a store
that keeps holders' records apart keeps them).

Most scans are decided on an empty snapshot and committed at once (the commit's guards
check what that assumed). Three facts would make that guess wrong again and again —
a spot at capacity, a senior past the day's ride cap, a holder who entered a spot
today — so each costs a failed commit, a snapshot and a second commit. They only ever
become more true within a local day, so a decision that relies on them needs no guard
(store.py): `DayFacts` (dayfacts.py) remembers them, once a snapshot showed them, until the day
ends, and the next scan is decided on them in one round trip. It also remembers which
holders and cards have a registry entry or a block: their scans read first (two round
trips instead of a failed guess and two more).

An offline record's upload (protocol §8, `ValidationRequest.offline`) goes through the
same pipeline with three differences: "now" is the terminal's decision time (every
check, the policy and the day's usage are as of then; clock skew does not apply), a
card tap's (card, counter) is spent like a QR nonce, and a token already spent is
`offline_double_use` rather than a replay — while a lower counter than the card's
highest is an upload that arrived out of order, not a clone. Its token and
idempotency entry are kept until no upload can arrive any more. Day facts are not used
(they are the server's today's).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping

from validator.clock import Clock

# The QR credential's value, where the HTTP layer has always imported it from.
from validator.credentials.essc_qr import QrScan as QrScan
from validator.credentials.verified import Rejected, VerifiedCredential
from validator.credentials.verifier import Presented, Verifier
from validator.dayfacts import EMPTY, DayFacts, VenueFacts
from validator.decision_body import render_decision
from validator.ledger.record import LedgerCategory, LedgerRecord
from validator.offline_context import OfflineContext
from validator.policy.engine import PolicyEngine
from validator.policy.types import PolicyDecision, PolicyInput, Usage
from validator.reasons import FRAUD_KINDS, Reason
from validator.state.store import (
    IDEMPOTENCY_TTL_S,
    NONCE_TTL_S,
    Commit,
    Committed,
    DecisionStore,
    Duplicate,
    Snapshot,
    SnapshotQuery,
    StoredResponse,
    StoreUnavailable,
)
from validator.txn_ids import new_txn_id
from validator.values import value

CLOCK_SKEW_S = 300  # protocol §4
MAX_ATTEMPTS = 8  # guard conflicts in a row before giving up with 503


@value
class ValidationRequest:
    """A schema-valid, authenticated request; terminal facts come from the registry.

    With `offline`, `scanned_at` is the terminal's decision time, and the pipeline's
    "now"."""

    terminal_id: str
    operator: str
    venue: str
    request_id: str
    scanned_at: dt.datetime  # timezone-aware
    scanned_at_text: str
    credential: Presented  # a kind registered in validator/credentials/kinds.py
    companion: bool
    body_sha256: str
    offline: OfflineContext | None = None


@value
class Outcome:
    """`response` is served with 200, unless `conflict` (409 request_id_conflict).

    `record` is the ledger record of a decision made now; None when an earlier
    decision was served again (a retry), so nothing is counted twice.
    """

    response: bytes
    conflict: bool = False
    record: LedgerRecord | None = None


@value
class _Verdict:
    reason: Reason
    policy: PolicyDecision | None = None
    spend_nonce: bool = False  # QR reached the replay step: its nonce is used up
    raise_atc: bool = False  # card counter moves up to this tap's atc

    @property
    def accepted(self) -> bool:
        return self.policy is not None and self.policy.accepted


class Decider:
    def __init__(
        self,
        *,
        engine: PolicyEngine,
        verifiers: Mapping[str, Verifier],
        store: DecisionStore,
        clock: Clock,
        observe_store: Callable[[str, float], None] | None = None,
    ) -> None:
        self._engine = engine
        # credential kind → its verifier (validator/credentials/kinds.py builds them)
        self._verifiers = dict(verifiers)
        self._store = store
        self._clock = clock
        # Told the seconds of each store round trip ("snapshot" / "commit"), for metrics.
        self._observe = observe_store or _ignore
        # Configuration read on every validation, looked up once (the engine is fixed).
        self._policy_version = engine.version
        self._ride_cap = engine.daily_concession_cap
        self._companion_window_s = engine.companion_window_s
        self._venues: dict[str, VenueFacts] = {}
        self._day_facts = DayFacts(self._ride_cap)

    async def validate(self, req: ValidationRequest) -> Outcome:
        offline = req.offline
        now = self._clock.now() if offline is None else req.scanned_at.timestamp()
        local_now = self._engine.local_from_unix(now)  # the one conversion per validation
        today = local_now.date()
        txn_id = new_txn_id()
        if offline is None and abs(now - req.scanned_at.timestamp()) > CLOCK_SKEW_S:
            return await self._deny_early(req, txn_id, now, local_now, Reason.CLOCK_SKEW)
        try:
            verified = self._verify(req, now, today)
        except Rejected as rejected:
            return await self._deny_early(req, txn_id, now, local_now, rejected.reason)

        venue = self._venue_facts(req.venue)
        # Most scans are of holders the store knows nothing about beyond today's usage
        # (no registry entry, no block): decide on the empty snapshot — or on the day's
        # one-way facts already seen — and commit in one round trip. The commit's guards
        # cover every fact the decision relied on (and `assume_no_status` the rest); if
        # one fails, read and decide. A holder or card seen with a registry entry or a
        # block (`known` is None) reads first.
        if req.companion:
            known = None
        elif offline is not None:
            # A record the terminal denied is settled from what the store holds (see
            # `_settled_offline`): no guess on the empty snapshot, whose guards a deny drops.
            known = EMPTY if offline.terminal_decision == "accept" else None
        else:
            known = self._day_facts.known(today, verified.holder_ref, verified.card_no, venue)
        if known is not None:
            outcome = await self._attempt(req, verified, known, txn_id, now, local_now,
                                          speculative=True)
            if outcome is not None:
                return outcome
        query = SnapshotQuery(
            terminal_id=req.terminal_id, request_id=req.request_id, local_date=today,
            holder_ref=verified.holder_ref, card_no=verified.card_no,
            card_id=verified.card_id, nonce=_token(verified, offline),
            spot_id=venue.spot_id,
        )
        for _ in range(MAX_ATTEMPTS):
            started = time.perf_counter()
            snap = await self._store.snapshot(query)
            self._observe("snapshot", time.perf_counter() - started)
            if snap.stored is not None:
                return _served_again(snap.stored, req)
            if offline is None:
                self._day_facts.learn(today, verified.holder_ref, verified.card_no, venue,
                                      snap)
            outcome = await self._attempt(req, verified, snap, txn_id, now, local_now)
            if outcome is not None:
                return outcome
        raise StoreUnavailable(f"{MAX_ATTEMPTS} guard conflicts in a row")

    async def _attempt(
        self,
        req: ValidationRequest,
        verified: VerifiedCredential,
        snap: Snapshot,
        txn_id: str,
        now: float,
        local_now: dt.datetime,
        *,
        speculative: bool = False,
    ) -> Outcome | None:
        """Decide on `snap` and commit; None if a guard failed (decide again)."""
        today = local_now.date()
        verdict = self._judge(req, verified, snap, now, local_now)
        if req.offline is not None and req.offline.turned_away(verdict.accepted):
            # Protocol §8.4: no ride or entry to settle; the token is still spent.
            verdict = _Verdict(Reason.TERMINAL_DENIED, spend_nonce=verdict.spend_nonce,
                               raise_atc=verdict.raise_atc)
        record = self._record(req, txn_id, now, local_now, verdict, verified, snap)
        response = render_decision(req.request_id, txn_id, verdict.reason, verdict.policy)
        commit = self._commit(req, today, verified, snap, verdict, record, response,
                              speculative=speculative)
        started = time.perf_counter()
        result = await self._store.commit(commit)
        self._observe("commit", time.perf_counter() - started)
        if isinstance(result, Committed):
            return Outcome(response=response, record=record)
        if isinstance(result, Duplicate):
            return _served_again(result.stored, req)
        return None

    # --- steps -----------------------------------------------------------------

    def _verify(self, req: ValidationRequest, now: float, today: dt.date) -> VerifiedCredential:
        credential = req.credential
        return self._verifiers[credential.kind].check(
            credential, req.terminal_id, req.scanned_at, now, today)

    def _judge(
        self,
        req: ValidationRequest,
        cred: VerifiedCredential,
        snap: Snapshot,
        now: float,
        local_now: dt.datetime,
    ) -> _Verdict:
        """Protocol §2 steps 7–9 / §3 from the counter on, then the policy."""
        today = local_now.date()
        token = _token_verdict(cred, snap, offline=req.offline is not None)
        if token.reason is not Reason.OK:
            return token
        spend_nonce, raise_atc = token.spend_nonce, token.raise_atc
        if snap.card_block is not None and snap.card_block.active_on(today):
            return _Verdict(Reason.CARD_BLOCKED, spend_nonce=spend_nonce, raise_atc=raise_atc)
        if snap.holder_block is not None and snap.holder_block.active_on(today):
            return _Verdict(Reason.HOLDER_BLOCKED, spend_nonce=spend_nonce, raise_atc=raise_atc)
        opened = snap.companion_opened_at
        usage = Usage(
            concession_rides_today=snap.concession_rides_today,
            entered_today=snap.entered_today,
            spot_entries_today=snap.spot_entries_today,
            companion_primary=opened is not None
            and 0 <= now - opened <= self._companion_window_s,
        )
        policy = self._engine.evaluate(PolicyInput(
            venue=req.venue,
            at=local_now,
            birth_date=cred.birth_date,
            categories=snap.categories,
            resident=self._engine.is_resident(cred.region),
            companion=req.companion,
            usage=usage,
        ))
        return _Verdict(policy.reason, policy, spend_nonce=spend_nonce, raise_atc=raise_atc)

    def _commit(
        self,
        req: ValidationRequest,
        today: dt.date,
        cred: VerifiedCredential,
        snap: Snapshot,
        verdict: _Verdict,
        record: LedgerRecord,
        response: bytes,
        *,
        speculative: bool = False,
    ) -> Commit:
        # Only an accepted decision has effects beyond the token (nonce / counter).
        eff = verdict.policy if verdict.policy is not None and verdict.policy.accepted else None
        venue = self._venue_facts(req.venue)
        spot = venue.spot_id
        return Commit(
            terminal_id=req.terminal_id, request_id=req.request_id,
            body_sha256=req.body_sha256, response=response, ledger=record.to_json(),
            local_date=today, holder_ref=cred.holder_ref,
            nonce=_token(cred, req.offline) if verdict.spend_nonce else None,
            card_id=cred.card_id if verdict.raise_atc else None,
            atc=cred.atc if verdict.raise_atc else None,
            concession_ride_cap=self._ride_cap if eff and eff.concession_ride else None,
            spot_id=spot,
            spot_capacity=venue.spot_capacity if eff and eff.spot_entry else None,
            concession_entry=bool(eff and eff.concession_entry),
            companion_use=snap.companion_opened_at if eff and eff.companion_used else None,
            companion_open_at=record.decided_at_unix if eff and eff.primary else None,
            companion_ttl_s=self._companion_window_s,
            assume_no_status=speculative,
            card_no=cred.card_no if speculative else None,
            nonce_ttl_s=_keep(req.offline, NONCE_TTL_S),
            idempotency_ttl_s=_keep(req.offline, IDEMPOTENCY_TTL_S),
        )

    async def _deny_early(
        self, req: ValidationRequest, txn_id: str, now: float, local_now: dt.datetime,
        reason: Reason,
    ) -> Outcome:
        record = self._record(req, txn_id, now, local_now, _Verdict(reason), None, None)
        response = render_decision(req.request_id, txn_id, reason, None)
        credential = req.credential
        named = self._verifiers[credential.kind].named_holder(credential)
        started = time.perf_counter()
        result = await self._store.commit(Commit(
            terminal_id=req.terminal_id, request_id=req.request_id,
            body_sha256=req.body_sha256, response=response, ledger=record.to_json(),
            local_date=local_now.date(),
            named_holder=named,
            idempotency_ttl_s=_keep(req.offline, IDEMPOTENCY_TTL_S),
        ))
        self._observe("commit", time.perf_counter() - started)
        if isinstance(result, Duplicate):
            return _served_again(result.stored, req)
        return Outcome(response=response, record=record)

    def _record(
        self,
        req: ValidationRequest,
        txn_id: str,
        now: float,
        local_now: dt.datetime,
        verdict: _Verdict,
        cred: VerifiedCredential | None,
        snap: Snapshot | None,
    ) -> LedgerRecord:
        engine, policy = self._engine, verdict.policy
        today = local_now.date()
        fare = policy.fare if policy is not None and policy.accepted else None
        categories: tuple[LedgerCategory, ...] = ()
        if snap is not None:
            categories = tuple(LedgerCategory(c.code, c.grade)
                               for c in snap.categories if c.active_on(today))
        return LedgerRecord(
            txn_id=txn_id, request_id=req.request_id, terminal=req.terminal_id,
            operator=req.operator, venue=req.venue,
            credential=req.credential.kind,
            decision="accept" if fare is not None else "deny", reason=verdict.reason.value,
            scanned_at=req.scanned_at_text, decided_at=local_now.isoformat(),
            decided_at_unix=now, policy_version=self._policy_version, companion=req.companion,
            holder_ref=cred.holder_ref if cred else None,
            card_no=cred.card_no if cred else None,
            age=engine.age_on(cred.birth_date, today) if cred else None,
            categories=categories,
            resident=engine.is_resident(cred.region) if cred else None,
            rule=policy.rule if fare is not None and policy is not None else None,
            rule_categories=policy.categories if fare is not None and policy else (),
            fare_class=fare.fare_class.value if fare else None,
            amount_fen=fare.amount_fen if fare else None,
            standard_fen=self._venue_facts(req.venue).standard_fen,
            fraud=FRAUD_KINDS.get(verdict.reason),
            **({} if req.offline is None else req.offline.ledger_fields(
                fare is not None, verdict.reason,
                uploaded_at=engine.local_from_unix(self._clock.now()).isoformat())),
        )

    def _venue_facts(self, venue: str) -> VenueFacts:
        """The venue's configuration as the pipeline needs it; `UnknownVenue` if none."""
        facts = self._venues.get(venue)
        if facts is None:
            info = self._engine.venue_info(venue)
            spot = _spot_of(venue)
            facts = self._venues[venue] = VenueFacts(
                spot_id=spot,
                spot_capacity=self._engine.spot_capacity(spot) if spot is not None else None,
                standard_fen=info.standard_fen,
            )
        return facts


def _ignore(op: str, seconds: float) -> None:
    pass


def _token_verdict(cred: VerifiedCredential, snap: Snapshot, *, offline: bool) -> _Verdict:
    """Protocol §2 step 7 / §3 step 6: a deny if the single-use token was used, else
    `ok` with what the commit spends (a QR's nonce, a card's counter — and, for an
    offline record, the card's (card, counter) token as a nonce too)."""
    if cred.atc is None:  # a QR: its nonce
        if snap.nonce_seen:
            return _Verdict(Reason.OFFLINE_DOUBLE_USE if offline else Reason.REPLAYED)
        return _Verdict(Reason.OK, spend_nonce=True)
    high = snap.atc_high
    raise_atc = high is None or cred.atc > high
    if offline:
        # Uploads arrive in any order: a lower counter is a tap made before the card's
        # highest known one; a counter seen before (or the highest itself) is two uses.
        if snap.nonce_seen or cred.atc == high:
            return _Verdict(Reason.OFFLINE_DOUBLE_USE)
        return _Verdict(cred.late_denial or Reason.OK, spend_nonce=True, raise_atc=raise_atc)
    if cred.late_denial is not None:
        return _Verdict(cred.late_denial, raise_atc=raise_atc)
    if not raise_atc:
        reason = Reason.REPLAYED if cred.atc == high else Reason.CARD_CLONE_SUSPECTED
        return _Verdict(reason)
    return _Verdict(Reason.OK, raise_atc=True)


def _token(cred: VerifiedCredential, offline: OfflineContext | None) -> bytes | None:
    """The nonce a decision spends: a QR's own, or an upload's (`OfflineContext.token`)."""
    return cred.nonce if offline is None else offline.token(cred)


def _keep(offline: OfflineContext | None, live_s: int) -> int:
    """A commit's TTL: the protocol's minimum, or an offline record's `keep_s`."""
    return live_s if offline is None else offline.keep_s


def _served_again(stored: StoredResponse, req: ValidationRequest) -> Outcome:
    """An earlier decision for this (terminal, request_id): the same bytes, or a 409."""
    if stored.body_sha256 != req.body_sha256:
        return Outcome(response=b"", conflict=True)
    return Outcome(response=stored.response)


def _spot_of(venue: str) -> str | None:
    kind, _, ident = venue.partition(":")
    return ident if kind == "spot" else None
