"""A reader back from an offline spell uploads its records (protocol §8.4) and holds every
result against what it decided itself.

Records go up in batches (at most `MAX_RECORDS` records and `MAX_BYTES` bytes, under the
service's default limits), each batch signed as §4. A 503 is answered by sending the
**same batch** again, re-signed with a fresh timestamp: the records committed before it
come back `duplicate`, nothing is counted twice. The first batch of every upload is sent
twice on purpose — a link that drops as the answer arrives — and every record of the
second sending must come back `duplicate` with the `txn_id` it had.

A result may differ from the reader's decision for the reasons §8.3 lists: the service
sees blocks and registry entries newer than the bundle, the day's usage on every
terminal, capacity, the cryptogram, the same evidence used elsewhere; and it never gives
the terminal-only reasons. Any other difference is a mismatch, and so is a `differs`
flag that contradicts the two decisions, or a record rejected. `Homecoming` does all
this for a `Reader` (a terminal with its offline self and what it decided) and tallies it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from terminals_sim.cityconf import TerminalSpec
from terminals_sim.offline_terminal import LocalDecision, OfflineTerminal
from terminals_sim.population import Holder
from terminals_sim.signing import sign_headers
from terminals_sim.terminals import SimTerminal

__all__ = ["BATCH_PATH", "Homecoming", "Kept", "OfflineTally", "Reader", "UploadFailed",
           "Uploader", "batches", "judge"]

Learn = Callable[["Kept", dict[str, Any]], None]

BATCH_PATH = "/v1/validations:batch"
MAX_RECORDS = 200  # the service takes 500 by default
MAX_BYTES = 512 * 1024  # ... and 1 MiB
RETRIES = 6  # a 503 or a dropped connection, per batch, before the upload is put off
TERMINAL_ONLY = frozenset({"bundle_expired", "offline_allowance_reached"})
# what the service may say where the reader decided otherwise (§8.3 "Expected differences")
EXPECTED = frozenset({
    "card_blocked", "holder_blocked",  # a block taken after the bundle
    "capacity_reached",  # a spot's capacity, not known offline
    "already_entered_today",  # usage on other terminals, or an e-card and a card
    "offline_double_use",  # the same QR or counter used again
    "cryptogram_invalid",  # a card's cryptogram, checked only at upload
    "terminal_denied",  # the reader turned the passenger away
})


class UploadFailed(Exception):
    """A batch was not taken. `refused`: the service answered it with a 4xx (a fault of
    the reader or the service, not of the link: sending it again would not help);
    otherwise the link or the store failed and the reader keeps its records."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


def judge(local: LocalDecision, result: dict[str, Any]) -> str | None:
    """What is wrong with the service's result for a record decided `local`, or None.

    `decision`, `reason` and `differs` are held against the reader's decision; the fare
    of two accepts may differ (registry categories, the daily cap: §8.3)."""
    got = (result.get("decision"), result.get("reason"))
    same = got == (local.decision, local.reason)
    if result.get("differs") is not (not same):
        return f"differs {result.get('differs')!r} for {got} against the reader's " \
               f"{(local.decision, local.reason)}"
    if same or local.reason in TERMINAL_ONLY or got[1] in EXPECTED:
        return None
    return f"{got} where the reader decided {(local.decision, local.reason)}"


def batches(records: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """The records in order, cut by count and by encoded size."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for record in records:
        length = len(json.dumps(record, ensure_ascii=False).encode()) + 1
        if chunk and (len(chunk) >= MAX_RECORDS or size + length > MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(record)
        size += length
    if chunk:
        yield chunk


@dataclass
class Uploader:
    """POSTs one terminal's batches to the service's main port."""

    session: aiohttp.ClientSession
    url: str
    terminal_id: str
    secret: bytes
    timeout_s: float = 10.0

    async def send(self, body: bytes) -> tuple[list[dict[str, Any]], bool]:
        """The results of one batch, and whether a 503 or a dropped connection made it
        go again (then earlier-committed records may answer `duplicate`)."""
        again = False
        for attempt in range(RETRIES):
            headers = sign_headers(self.terminal_id, self.secret, "POST", BATCH_PATH, body,
                                   int(time.time()))
            try:
                async with self.session.post(
                        self.url + BATCH_PATH, data=body, headers=headers,
                        timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as resp:
                    raw = await resp.read()
                    if resp.status == 200:
                        return list(json.loads(raw)["results"]), again
                    if resp.status != 503:
                        raise UploadFailed(f"HTTP {resp.status} {raw[:200]!r}",
                                           refused=400 <= resp.status < 500)
            except (aiohttp.ClientError, TimeoutError):
                pass
            again = True
            await asyncio.sleep(min(0.25 * 2 ** attempt, 5.0))
        raise UploadFailed(f"no answer after {RETRIES} attempts")


@dataclass
class OfflineTally:
    """What offline spells did; `skipped` says why there were none."""

    spells: int = 0
    decided: int = 0  # scans decided by terminals in a spell
    accepted: int = 0  # ... accepted by them
    uploaded: int = 0  # records applied by the service, once each
    resent: int = 0  # records sent again and answered `duplicate`, as they must be
    differs: int = 0  # results the service flags `differs`
    settled: int = 0  # uploaded records the service accepted
    settled_fen: int = 0
    mismatches: int = 0
    skipped: str | None = None


@dataclass(frozen=True)
class Kept:
    """One offline decision, kept until the service has answered its record."""

    holder: Holder | None
    spec: TerminalSpec
    at: int
    local: LocalDecision


@dataclass
class Reader:
    """A terminal that goes offline now and then: its offline self and what it decided."""

    sim: SimTerminal
    terminal: OfflineTerminal
    uploader: Uploader
    kept: dict[str, Kept] = field(default_factory=dict)  # by record_id, until answered
    tried: set[str] = field(default_factory=set)  # sent, no answer handled: maybe applied


class Homecoming:
    """A reader back online: its records uploaded, each result checked, then `learn`t
    (the caller's usage model); what happened goes to `tally` and `say`."""

    def __init__(self, tally: OfflineTally, say: Callable[[str], None], learn: Learn) -> None:
        self.tally, self.say, self.learn = tally, say, learn

    async def upload(self, reader: Reader) -> None:
        """Every record the reader holds, in batches; the first batch sent twice."""
        records = list(reader.terminal.records)
        if not records:
            return
        was = replace(self.tally)
        reasons: Counter[str] = Counter()
        for n, chunk in enumerate(batches(records)):
            body, txns = reader.terminal.batch_body(chunk), {}
            sent = {r["record_id"] for r in chunk}
            maybe_in = reader.tried & sent  # sent before without an answer handled
            reader.tried |= sent
            try:
                results, again = await reader.uploader.send(body)
                txns = self._check(reader, chunk, results, again, maybe_in, reasons)
            except UploadFailed as exc:
                if not exc.refused:
                    self.say(f"demo: {reader.sim.id} keeps its records for later: {exc}")
                    return
                self.mismatch(f"{reader.sim.id}: a batch was refused: {exc}")
            # answered (not a 503): the reader deletes these records (§8.4)
            reader.tried -= sent
            reader.terminal.records[:] = [r for r in reader.terminal.records
                                          if r["record_id"] not in sent]
            if n == 0 and txns:  # the link drops as the answer arrives: the batch again
                try:
                    self._check_again(reader, chunk, (await reader.uploader.send(body))[0],
                                      txns)
                except UploadFailed as exc:
                    self.say(f"demo: {reader.sim.id} could not send a batch again: {exc}")
        now = self.tally
        why = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common())
        self.say(f"demo: {reader.sim.id} back online: uploaded {now.uploaded - was.uploaded} "
                 f"records, {now.settled - was.settled} settled; "
                 f"{now.differs - was.differs} differ from the terminal"
                 f"{f' ({why})' if why else ''}; mismatches {now.mismatches - was.mismatches}")

    def _check(self, reader: Reader, chunk: list[dict[str, Any]],
               results: list[dict[str, Any]], again: bool, maybe_in: set[str],
               reasons: Counter[str]) -> dict[str, str]:
        """Each result against the reader's decision; the txn_ids by record_id. A record
        may come back `duplicate` only if it may have been committed before: its batch
        went again after a 503 or a dropped link."""
        tid, txns = reader.sim.id, {}
        if len(results) != len(chunk):
            self.mismatch(f"{tid}: {len(results)} results for {len(chunk)} records")
        for record, result in zip(chunk, results, strict=False):
            kept = reader.kept.pop(record["record_id"])
            status = result.get("status")
            retried = again or record["record_id"] in maybe_in
            if status != "applied" and not (status == "duplicate" and retried):
                self.mismatch(f"{tid} {record['record_id']}: {status} {result.get('error')} "
                               f"{result.get('detail') or ''}".rstrip())
                continue
            txns[record["record_id"]] = str(result.get("txn_id"))
            self.tally.uploaded += 1
            problem = judge(kept.local, result)
            if problem:
                self.mismatch(f"{tid} {record['record_id']}: {problem}")
            if result.get("differs"):
                self.tally.differs += 1
                reasons[str(result.get("reason"))] += 1
            if result.get("decision") == "accept":
                self.tally.settled += 1
                self.tally.settled_fen += int((result.get("fare") or {}).get("amount_fen", 0))
            self.learn(kept, result)
        return txns

    def _check_again(self, reader: Reader, chunk: list[dict[str, Any]],
                     results: list[dict[str, Any]], txns: dict[str, str]) -> None:
        if len(results) != len(chunk):
            self.mismatch(f"{reader.sim.id}: {len(results)} results for {len(chunk)} "
                           "records sent again")
        for record, result in zip(chunk, results, strict=False):
            got = (result.get("status"), result.get("txn_id"))
            want = ("duplicate", txns.get(record["record_id"]))
            if got != want:
                self.mismatch(f"{reader.sim.id} {record['record_id']} sent again: {got}, "
                               f"expected {want}")
            self.tally.resent += 1

    def mismatch(self, text: str) -> None:
        self.tally.mismatches += 1
        self.say(f"MISMATCH offline {text}")
