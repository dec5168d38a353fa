"""A real validator on loopback, and holders with real cards and e-cards, for HTTP tests.

The service runs in this process on a real aiohttp server (127.0.0.1, free port) with a
`FixedClock`; requests go over TCP, signed by the simulator's own terminal code.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from terminals_sim.card import Card, card_id_for, make_ssn
from terminals_sim.ecard import Issuer, Phone, generate_key, load_issuers
from terminals_sim.terminal import Reply, TerminalClient
from validator.clock import FixedClock
from validator.holders.ref import holder_ref
from validator.state.store import Store
from validator.web.appkeys import LIVE_FEED, STORE, TERMINAL_FRONT
from validator.web.dashboard.feed import LiveFeed
from validator.web.terminal.front import TerminalFront

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "config"
TZ = ZoneInfo("Asia/Shanghai")
# Wednesday 2026-12-02 10:00 local: a working day, off-peak, every spot open.
WED_10 = dt.datetime(2026, 12, 2, 10, 0, tzinfo=TZ).timestamp()


@dataclass
class Holder:
    ssn: str
    ref: str
    birth: dt.date
    card: Card
    phone: Phone
    region: str

    def qr(self, now: float, nonce: bytes | None = None) -> dict[str, str]:
        return {"type": "essc_qr", "qr": self.phone.qr(int(now), nonce)}


@dataclass
class Service:
    url: str  # aiohttp's port: every route
    terminal_url: str  # where terminal requests go: aiohttp's port, or the lean front's
    app: web.Application
    clock: FixedClock
    keys_dir: Path
    session: aiohttp.ClientSession
    secrets: dict[str, bytes]
    pepper: bytes
    master_keys: dict[tuple[str, int], bytes]
    issuers: list[Issuer]
    _serial: list[int] = field(default_factory=lambda: [0])

    @property
    def store(self) -> Store:
        return self.app[STORE]

    @property
    def lean_front(self) -> TerminalFront:
        """The lean terminal front itself: its app key types it only by the port it has."""
        front = self.app[TERMINAL_FRONT]
        assert isinstance(front, TerminalFront), "served without the lean front"
        return front

    @property
    def live_feed(self) -> LiveFeed:
        """The dashboard's feed itself: its app key types it by what the routes read."""
        feed = self.app[LIVE_FEED]
        assert isinstance(feed, LiveFeed), "served without the dashboard"
        return feed

    async def metric(self, sample: str) -> float | None:
        """The value of one `/metrics` sample, named with its labels as exposed
        (`validator_store_round_trip_seconds_count{op="ledger_read"}`); None if absent."""
        async with self.session.get(self.url + "/metrics") as resp:
            for line in (await resp.text()).splitlines():
                name, _, value = line.rpartition(" ")
                if name == sample:
                    return float(value)
        return None

    def terminal(self, terminal_id: str) -> TerminalClient:
        return TerminalClient(self.session, self.terminal_url, terminal_id,
                              self.secrets.get(terminal_id, b"\0" * 32))

    def scanned_at(self, offset_s: float = 0) -> str:
        return dt.datetime.fromtimestamp(self.clock.now() + offset_s, TZ).isoformat()

    async def validate(
        self, terminal_id: str, credential: dict[str, Any], *, request_id: str | None = None,
        companion: bool = False, scanned_at: str | None = None,
    ) -> Reply:
        client = self.terminal(terminal_id)
        body = client.body(credential, scanned_at or self.scanned_at(),
                           request_id=request_id, companion=companion)
        return await client.post(body, now=int(self.clock.now()))

    async def tap(self, terminal_id: str, holder: Holder, **kw: Any) -> Reply:
        now = int(self.clock.now())
        return await self.validate(terminal_id, holder.card.tap(terminal_id, now, "0A1B2C3D"),
                                   scanned_at=self.scanned_at(), **kw)

    def holder(
        self, birth: dt.date, *, region: str = "369900", alg: str = "EdDSA",
        expires: str = "20301231", ssn: str | None = None,
    ) -> Holder:
        """A holder with a new card and e-card; pass `ssn` for a replacement card."""
        self._serial[0] += 1
        serial = self._serial[0]
        ssn = ssn or make_ssn(region, birth, serial % 1000)
        ref = holder_ref(self.pepper, ssn)
        card_no = f"A{serial:08d}"
        card = Card(region=region, ssn=ssn, card_no=card_no,
                    card_id=card_id_for(region, serial), issued="20240101", expires=expires,
                    kv=1, master_key=self.master_keys.get((region, 1), b"\x11" * 16))
        issuer = next(i for i in self.issuers if i.alg == alg)
        device = generate_key(alg)  # type: ignore[arg-type]
        now = int(self.clock.now())
        level1 = issuer.issue(bytes.fromhex(ref), int(birth.strftime("%Y%m%d")), card_no,
                              region, device.public_key(), iat=now - 86400, exp=now + 30 * 86400)
        return Holder(ssn, ref, birth, card, Phone(level1, device, alg), region)  # type: ignore[arg-type]


def load_service_keys(keys_dir: Path) -> dict[str, Any]:
    secrets = {k: bytes.fromhex(v) for k, v in
               json.loads((keys_dir / "terminal-secrets.json").read_text()).items()}
    masters = {(k["region"], k["kv"]): bytes.fromhex(k["key"]) for k in
               json.loads((keys_dir / "card-master-keys.json").read_text())["keys"]}
    pepper = bytes.fromhex((keys_dir / "holder-pepper.hex").read_text().strip())
    return {"secrets": secrets, "master_keys": masters, "pepper": pepper,
            "issuers": load_issuers(keys_dir)}


def age_birth(age: int, on: float = WED_10) -> dt.date:
    """A birth date that makes the holder `age` on the local date of `on` (mid-year)."""
    day = dt.datetime.fromtimestamp(on, TZ).date()
    return dt.date(day.year - age - 1, 6, 15) if day.month < 6 else \
        dt.date(day.year - age, 6, 15)


def request_id() -> str:
    return os.urandom(9).hex()
