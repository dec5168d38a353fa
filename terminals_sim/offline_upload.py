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
flag that contradicts the two decisions, or a record rejected.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from terminals_sim.offline_terminal import LocalDecision
from terminals_sim.signing import sign_headers

__all__ = ["BATCH_PATH", "UploadFailed", "Uploader", "batches", "judge"]

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
