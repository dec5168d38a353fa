"""Offline spells in the demo stream: chosen terminals lose their link for minutes.

A terminal picked for a spell first fetches a bundle (`GET /v1/terminal/bundle`) and, while
it is still online, keeps it current with deltas (`?since=SEQ`) every `refresh_s`. Then its
link drops: its passengers keep coming (the stream still picks it), but it sends nothing
and decides each scan with the reference offline terminal (`offline_terminal.py`),
keeping a record of each. When the spell ends it uploads the records in batches
(`offline_upload.py`) and holds every result against its own decision. The oracle learns
the uploaded decisions as it learns live answers, so later expectations count them.

`SpellPlan.at_once` terminals are offline at a time, each for a length drawn from
`length_s`, with a pause drawn from `gap_s` before the next; the first spells begin
within `FIRST_SPELL_S`. A spell that outlasts the bundle's not-after shows the reader
refusing offline acceptance (`bundle_expired`). A service with offline terminals
disabled answers the bundle 404 `offline_disabled`: the spells are then skipped.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from terminals_sim.cityconf import CityConfig
from terminals_sim.keyset import SimKeys
from terminals_sim.offline_bundle import (
    BundleRefused,
    OfflineBundle,
    load_bundle_keys,
    open_bundle,
)
from terminals_sim.offline_terminal import OfflineTerminal
from terminals_sim.offline_upload import Homecoming, Kept, OfflineTally, Reader, Uploader
from terminals_sim.open_loop import Outcome
from terminals_sim.oracle import Oracle
from terminals_sim.population import Holder
from terminals_sim.signing import sign_headers
from terminals_sim.terminals import SimTerminal

__all__ = ["OFFLINE", "OfflineSpells", "OfflineTally", "SpellPlan", "spell_candidates"]

OFFLINE = "offline/"  # the label prefix of a scan decided by a terminal in a spell
BUNDLE_PATH = "/v1/terminal/bundle"
FIRST_SPELL_S = 90.0


@dataclass(frozen=True)
class SpellPlan:
    at_once: int = 1  # terminals offline at a time; 0: no spells
    terminals: tuple[str, ...] = ()  # the ones that may go offline; empty: any
    length_s: tuple[float, float] = (180.0, 720.0)
    gap_s: tuple[float, float] = (180.0, 720.0)
    refresh_s: float = 60.0  # a delta this often while online


def spell_candidates(plan: SpellPlan, city: CityConfig, keys: SimKeys) -> list[str]:
    """The terminals that may go offline; ValueError naming one that cannot."""
    usable = [t.id for t in city.terminals if t.enabled and t.id in keys.terminal_secrets]
    for tid in plan.terminals:
        if tid not in usable:
            raise ValueError(f"--offline-terminals: {tid} is not an enabled terminal of "
                             "the configuration with a secret in the key set")
    return list(plan.terminals) or usable


class OfflineSpells:
    """The demo's offline spells: an `OfflineDesk` for the stream, and the spells' loop."""

    def __init__(self, plan: SpellPlan, *, session: aiohttp.ClientSession, url: str,
                 keys_dir: Path, keys: SimKeys, fleet: dict[str, SimTerminal],
                 oracle: Oracle, city: CityConfig, rng: random.Random,
                 say: Callable[[str], None] = print) -> None:
        self.plan, self.session, self.url = plan, session, url.rstrip("/")
        self.keys_dir, self.keys, self.fleet = keys_dir, keys, fleet
        self.oracle, self.city, self.rng, self.say = oracle, city, rng, say
        self.candidates = spell_candidates(plan, city, keys)
        self.total = OfflineTally()
        self._shown = OfflineTally()
        self._readers: dict[str, Reader] = {}
        self._offline: dict[str, Reader] = {}
        self._held: set[str] = set()  # picked by a slot: online before, or offline now
        self._bundle_keys: dict[bytes, Any] = {}
        self.back = Homecoming(self.total, say, self._learn)

    # --- set-up ----------------------------------------------------------------------

    async def start(self) -> bool:
        """Probe the bundle endpoint; False (and one line) if spells cannot run."""
        try:
            self._bundle_keys = load_bundle_keys(self.keys_dir)
            status, body, _ = await self._fetch(self.candidates[0], None)
        except (OSError, ValueError, KeyError, aiohttp.ClientError) as exc:
            return self._skip(f"no bundle could be fetched ({type(exc).__name__}: {exc})")
        if status == 404 and b"offline_disabled" in body:
            return self._skip("the service has offline terminals disabled")
        if status != 200:
            return self._skip(f"the bundle answered HTTP {status} {body[:120]!r}")
        return True

    def _skip(self, why: str) -> bool:
        self.total.skipped = why
        self.say(f"demo: offline spells skipped: {why}")
        return False

    async def _fetch(self, tid: str, since: int | None) -> tuple[int, bytes, dict[str, str]]:
        headers = sign_headers(tid, self.keys.terminal_secrets[tid], "GET", BUNDLE_PATH, b"",
                               int(time.time()))
        query = "" if since is None else f"?since={since}"
        async with self.session.get(self.url + BUNDLE_PATH + query, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=30)) as resp:
            return resp.status, await resp.read(), dict(resp.headers)

    async def sync(self, tid: str) -> Reader:
        """The terminal's reader with its bundle brought up to date (full, then deltas)."""
        reader = self._readers.get(tid)
        if reader is None:
            uploader = Uploader(self.session, self.url, tid, self.keys.terminal_secrets[tid])
            reader = Reader(self.fleet[tid], OfflineTerminal(tid, OfflineBundle()), uploader)
            self._readers[tid] = reader
        bundle = reader.terminal.bundle
        status, body, _ = await self._fetch(tid, bundle.seq if bundle.loaded else None)
        if status != 200:
            raise ValueError(f"{tid}: the bundle answered HTTP {status} {body[:120]!r}")
        try:
            bundle.apply(open_bundle(body, self._bundle_keys))
        except BundleRefused as refused:
            self._mismatch(f"{tid} refused a bundle from the service: {refused.reason}")
        return reader

    # --- the stream's side -----------------------------------------------------------

    def decide(self, terminal: SimTerminal, credential: dict[str, Any], now: int,
               holder: Holder | None) -> Outcome | None:
        reader = self._offline.get(terminal.id)
        if reader is None:
            return None
        offline = reader.terminal
        local = (offline.scan_qr(credential["qr"], now) if credential["type"] == "essc_qr"
                 else offline.tap(credential, now))
        reader.kept[offline.records[-1]["record_id"]] = Kept(holder, terminal.spec, now, local)
        self.total.decided += 1
        self.total.accepted += local.decision == "accept"
        return Outcome(f"{OFFLINE}{local.decision}/{local.reason}")

    def line(self) -> str:
        """The offline part of a summary line: what happened since the last one."""
        now, was = self.total, self._shown
        self._shown = replace(now)
        wrong = now.mismatches - was.mismatches
        return (f"; offline {now.decided - was.decided} decided, "
                f"{now.uploaded - was.uploaded} uploaded, {now.differs - was.differs} differ"
                f"{f', {wrong} mismatches' if wrong else ''}")

    # --- spells ----------------------------------------------------------------------

    async def run(self) -> None:
        """`at_once` spells at a time, until cancelled."""
        if self.total.skipped:
            return
        slots = [asyncio.create_task(self._slot()) for _ in range(self.plan.at_once)]
        try:
            await asyncio.gather(*slots)
        finally:
            for slot in slots:
                slot.cancel()
            await asyncio.gather(*slots, return_exceptions=True)

    async def _slot(self) -> None:
        gap = self.rng.uniform(0.5, 1.0) * min(self.plan.gap_s[0], FIRST_SPELL_S)
        while True:
            free = [tid for tid in self.candidates if tid not in self._held]
            tid = self.rng.choice(free) if free else None
            if tid is not None:
                self._held.add(tid)
            try:
                if tid is not None:
                    await self._online_then_off(tid, gap)
                else:
                    await asyncio.sleep(gap)
            except Exception as exc:  # shown, and the next spell comes; the stream goes on
                self.say(f"demo: offline spell of {tid} put off: {type(exc).__name__}: {exc}")
                await asyncio.sleep(self.plan.refresh_s)
            finally:
                self._held.discard(tid or "")
            gap = self.rng.uniform(*self.plan.gap_s)

    async def _online_then_off(self, tid: str, gap_s: float) -> None:
        reader = await self.sync(tid)
        offline_at = time.monotonic() + gap_s
        while (left := offline_at - time.monotonic()) > 0:
            await asyncio.sleep(min(left, self.plan.refresh_s))
            await self.sync(tid)
        await self.spell(reader, self.rng.uniform(*self.plan.length_s))

    async def spell(self, reader: Reader, length_s: float) -> None:
        """`reader` offline for `length_s`, then back: its records uploaded."""
        self.begin(reader, length_s)
        try:
            await asyncio.sleep(length_s)
        finally:
            self._offline.pop(reader.sim.id, None)
        await self.upload(reader)

    async def end(self, reader: Reader) -> None:
        """`reader` back online: it uploads what it holds."""
        self._offline.pop(reader.sim.id, None)
        await self.upload(reader)

    def begin(self, reader: Reader, length_s: float) -> None:
        """`reader` loses its link: from now on it decides alone."""
        bundle = reader.terminal.bundle
        not_after = self.city.local(bundle.exp)
        self._offline[reader.sim.id] = reader
        self.total.spells += 1
        length = f"{length_s / 60:.1f} min" if length_s >= 60 else f"{length_s:.0f} s"
        self.say(f"demo: {reader.sim.id} offline for {length}, deciding from "
                 f"bundle {bundle.seq} (not after {not_after:%m-%d %H:%M:%S})")

    async def close(self) -> None:
        """At the end of a run: every terminal comes back and uploads what it holds."""
        self._offline.clear()
        for reader in self._readers.values():
            await self.upload(reader)

    # --- coming back ------------------------------------------------------------------

    async def upload(self, reader: Reader) -> None:
        """Every record the reader holds, in batches, each result checked."""
        await self.back.upload(reader)

    def _learn(self, kept: Kept, result: dict[str, Any]) -> None:
        """The service's decision, settled now: the oracle's usage as of the scan."""
        fare = result.get("fare") or {}
        if kept.holder is None:
            return
        local = self.city.local(kept.at)
        # a batch result names no rule: the first offer of that fare class is the one the
        # policy chose (cheapest, the first listed winning ties)
        rule = next((o.rule for o in self.oracle.offers(kept.holder, kept.spec, local)
                     if o.fare_class == fare.get("class")), None)
        self.oracle.observe(kept.holder, kept.spec, kept.at, companion=False, status=200,
                            body={**result, "rule": rule})

    def _mismatch(self, text: str) -> None:
        self.back.mismatch(text)

