"""The offline drill's scenes, in the order they are played (offline_drill.py says what
each one expects and why), and `run_drill`, the entry point of `offline-drill`."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from terminals_sim.keyset import load_sim_keys
from terminals_sim.offline_drill import Drill, DrillOptions
from terminals_sim.offline_terminal import OfflineTerminal

__all__ = ["final_line", "play", "run_drill"]

MAX_BATCH = 500  # the service's default `batch_max_records`


async def run_drill(options: DrillOptions) -> dict[str, Any]:
    """Every scene once; the final JSON line's fields, with the first mismatches."""
    if not 0 < options.minutes <= 1440:
        raise ValueError("--minutes takes 0 < M <= 1440 (the bundle's default not-after)")
    keys = load_sim_keys(options.keys_dir)
    if not keys.issuers or not keys.master_keys:
        raise ValueError(f"{options.keys_dir}: the drill needs issuer and card keys "
                         "(a dev or test key set: python -m validator keys init)")
    async with aiohttp.ClientSession() as session:
        drill = Drill(options, keys, session)
        await play(drill)
    tally = drill.tally
    return {"sent": tally.sent, "mismatches": len(tally.mismatches),
            "double_use_detected": tally.double_use, "settled": tally.settled,
            "first_mismatches": tally.mismatches[:10]}


def final_line(result: dict[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False)


async def _readers(drill: Drill) -> list[OfflineTerminal]:
    """The first N bus readers of the registry that have a secret, each with a bundle."""
    secrets = drill.keys.terminal_secrets
    if not secrets:
        raise ValueError("the key set has no terminal secrets")
    probe = await drill.bundle(sorted(secrets)[0])
    buses = sorted(tid for tid, venue in probe.fixed["terminals"].items()
                   if venue.startswith("bus:") and tid in secrets)
    wanted = drill.options.terminals
    if not 2 <= wanted <= len(buses):
        raise ValueError(f"--terminals takes 2 to {len(buses)} (the registry's bus readers)")
    return [OfflineTerminal(tid, await drill.bundle(tid)) for tid in buses[:wanted]]


async def play(drill: Drill) -> None:
    readers = await _readers(drill)
    t0 = min(int(r.bundle.fixed["iat"]) for r in readers)  # the service's clock
    start = t0 - int(drill.options.minutes * 60)
    blocked = drill.passenger(0, t0)
    await drill.operator("PUT", f"/v1/admin/blocked-cards/{blocked.card.card_no}",
                         {"reason": "lost"})
    for i in range(max(1, int(drill.options.minutes * 2))):  # a passenger every 30 s
        for k, reader in enumerate(readers):
            who, now = drill.passenger(i * len(readers) + k, t0), start + 30 * i + k
            if (i + k) % 2:
                drill.tap(reader, who.card, now)
            else:
                drill.qr(reader, who, now)
    a, b = readers[0], readers[1]
    mid = start + 15
    shown = drill.passenger(1, t0)  # a screenshot of one QR, at two readers
    qr = shown.qr(mid)
    drill.qr(a, shown, mid, qr=qr)
    drill.qr(b, shown, mid + 20, qr=qr)
    skimmed = drill.passenger(2, t0)  # a card and its clone, one counter each
    clone = skimmed.card.clone()
    drill.tap(a, skimmed.card, mid + 5)
    drill.tap(b, clone, mid + 25)
    commuter = drill.passenger(3, t0)  # one card on two buses: two counters, both good
    drill.tap(a, commuter.card, mid + 40)
    drill.tap(b, commuter.card, mid + 90)
    drill.tap(a, blocked.card, mid + 60, reason="card_blocked")
    drill.qr(b, blocked, mid + 80, reason="card_blocked")
    _past_not_after(drill, readers[-1], t0)
    decided = sum(len(r.records) for r in readers)
    drill.options.progress(f"offline-drill: {len(readers)} readers offline for "
                           f"{drill.options.minutes:g} min: {decided} decisions, "
                           f"{len(drill.tally.mismatches)} mismatches")
    await _uploads(drill, readers)


def _past_not_after(drill: Drill, reader: OfflineTerminal, t0: int) -> None:
    """A reader still offline after its bundle's not-after accepts nothing."""
    late = OfflineTerminal(reader.terminal_id, reader.bundle, record_prefix="late")
    now = reader.bundle.exp + 60
    decision = late.scan_qr(drill.passenger(4, t0).qr(now), now)
    drill.tally.check(f"{reader.terminal_id} past not-after", (decision.decision,
                      decision.reason), ("deny", "bundle_expired"))


async def _uploads(drill: Drill, readers: list[OfflineTerminal]) -> None:
    """Each reader's records in three batches, the last first; then all again."""
    seen: dict[tuple[str, str], str] = {}
    spent: set[str] = set()
    days = sorted({r["scanned_at"][:10] for reader in readers for r in reader.records})
    before = await drill.settlement(days)
    for turn in (2, 0, 1):
        for reader in readers if turn else reversed(readers):
            records = reader.records
            third = -(-len(records) // 3)
            chunk = records[turn * third:(turn + 1) * third]
            if chunk:
                await drill.upload(reader, chunk, seen, spent)
    for reader in readers:
        for first in range(0, len(reader.records), MAX_BATCH):
            await drill.upload(reader, reader.records[first:first + MAX_BATCH], seen, spent)
    after = await drill.settlement(days)
    for day in days:
        want = drill.tally.days.get(day, [0, 0])
        got = (after[day][0] - before[day][0], after[day][1] - before[day][1])
        drill.tally.check(f"settlement {day} (count, charged_fen)", got, tuple(want))
    drill.options.progress(f"offline-drill: uploaded {drill.tally.sent} records, "
                           f"{len(drill.tally.mismatches)} mismatches")
