"""Gates and bus readers from `config/terminals.toml`, and when passengers arrive.

A `SimTerminal` is one registry terminal with its secret from the key set: it builds a
§4 request for a card tap or a QR scan, signs it (through `TerminalClient`, which
retries a timeout with the same request_id) and returns the reply. A `Fleet` holds every
enabled terminal that has a secret.

Arrival profiles give the relative passenger flow at a local time of day: buses have a
morning and an evening peak, scenic spots a tourist curve inside their opening hours.
The demo stream draws terminals by these weights (`footfall.py`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

import aiohttp

from terminals_sim.card import Card, new_un
from terminals_sim.cityconf import CityConfig, TerminalSpec
from terminals_sim.keyset import SimKeys
from terminals_sim.terminal import Reply, TerminalClient

__all__ = ["Fleet", "SimTerminal", "bus_flow", "rfc3339", "spot_flow"]


def rfc3339(at: float, tz: dt.tzinfo) -> str:
    """`scanned_at` as a terminal writes it: local time, whole seconds, with offset."""
    return dt.datetime.fromtimestamp(int(at), tz).isoformat(timespec="seconds")


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-((hour - centre) / width) ** 2)


def bus_flow(local: dt.datetime) -> float:
    """Relative boardings per minute: peaks at 08:00 and 18:00, quiet 23:00–05:00."""
    hour = local.hour + local.minute / 60
    if hour < 5 or hour >= 23:
        return 0.02
    return 0.25 + _bump(hour, 8.0, 1.0) + 0.8 * _bump(hour, 18.0, 1.2)


def spot_flow(local: dt.datetime, opens: dt.time, closes: dt.time) -> float:
    """Relative entries per minute: nothing outside opening hours, a late-morning peak
    and a smaller early-afternoon one (tour groups, then day-trippers)."""
    if not opens <= local.time() < closes:
        return 0.0
    hour = local.hour + local.minute / 60
    return 0.1 + _bump(hour, 10.5, 1.5) + 0.6 * _bump(hour, 14.5, 1.5)


@dataclass
class SimTerminal:
    """A gate or bus reader able to send signed validation requests."""

    spec: TerminalSpec
    client: TerminalClient
    tz: dt.tzinfo

    @property
    def id(self) -> str:
        return self.spec.id

    def body(self, credential: dict[str, Any], at: float, *, companion: bool = False,
             request_id: str | None = None) -> bytes:
        return self.client.body(credential, rfc3339(at, self.tz), request_id=request_id,
                                companion=companion)

    def tap_credential(self, card: Card, at: float) -> dict[str, Any]:
        """Read a card: a fresh unpredictable number, the counter goes up by one."""
        return dict(card.tap(self.id, int(at), new_un()))

    @staticmethod
    def qr_credential(qr: str) -> dict[str, Any]:
        return {"type": "essc_qr", "qr": qr}

    async def send(self, body: bytes) -> Reply:
        return await self.client.post(body)

    @staticmethod
    def request_of(body: bytes) -> dict[str, Any]:
        """The request as a report shows it (the body, decoded)."""
        try:
            parsed = json.loads(body)
        except ValueError:
            return {"raw": body[:200].decode("utf-8", "replace")}
        return parsed if isinstance(parsed, dict) else {"raw": parsed}


class Fleet:
    """Every enabled registry terminal that has a secret, ready to send."""

    def __init__(self, city: CityConfig, keys: SimKeys, session: aiohttp.ClientSession,
                 base_url: str, *, timeout_s: float = 2.0, retries: int = 2) -> None:
        self.city = city
        self.all: dict[str, SimTerminal] = {}
        for spec in city.terminals:
            secret = keys.terminal_secrets.get(spec.id)
            if secret is None:
                continue
            client = TerminalClient(session, base_url, spec.id, secret,
                                    timeout_s=timeout_s, retries=retries)
            self.all[spec.id] = SimTerminal(spec, client, city.tz)
        self.enabled = [t for t in self.all.values() if t.spec.enabled]
        self.disabled = [t for t in self.all.values() if not t.spec.enabled]
        self.buses = [t for t in self.enabled if t.spec.kind == "bus"]
        self.gates = [t for t in self.enabled if t.spec.kind == "gate"]

    def at_venue(self, venue: str) -> list[SimTerminal]:
        return [t for t in self.enabled if t.spec.venue == venue]
