"""Credentials for benchmarks, made with the simulator's card and e-card code.

Everything is built before any clock starts: a QR costs an issuer and a device signature
to make, which is not what a benchmark of the validator should time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Literal

from terminals_sim.card import Card, card_id_for, make_ssn
from terminals_sim.ecard import Issuer, Phone, generate_key, load_issuers

REGION = "369900"  # the default city's card region (config/city.toml)
TERMINAL = "T-BUS-K1-001"  # a bus reader of config/terminals.toml
Alg = Literal["ES256", "EdDSA"]


def master_keys(keys_dir: Path) -> dict[tuple[str, int], bytes]:
    doc = json.loads((keys_dir / "card-master-keys.json").read_text())
    return {(k["region"], k["kv"]): bytes.fromhex(k["key"]) for k in doc["keys"]}


def terminal_secret(keys_dir: Path, terminal_id: str = TERMINAL) -> bytes:
    return bytes.fromhex(json.loads((keys_dir / "terminal-secrets.json").read_text())[terminal_id])


def cards(keys_dir: Path, n: int, *, first_serial: int = 10_000_000) -> list[Card]:
    """`n` cards of holders born 1950–1999 (seniors and others), fresh counters."""
    key = master_keys(keys_dir)[(REGION, 1)]
    made = []
    for i in range(n):
        birth = dt.date(1950 + i % 50, 1 + i % 12, 1 + i % 28)
        serial = first_serial + i
        made.append(Card(region=REGION, ssn=make_ssn(REGION, birth, serial % 1000),
                         card_no=f"C{serial % 10**8:08d}", card_id=card_id_for(REGION, serial),
                         issued="20240101", expires="20341231", kv=1, master_key=key))
    return made


def card_taps(
    keys_dir: Path, n: int, now: int, terminal_id: str = TERMINAL
) -> list[dict[str, Any]]:
    """One tap (§3 credential object) from each of `n` fresh cards, made at `now`."""
    return [dict(card.tap(terminal_id, now, os.urandom(4).hex().upper()))
            for card in cards(keys_dir, n)]


def issuer(keys_dir: Path, alg: Alg) -> Issuer:
    return next(i for i in load_issuers(keys_dir) if i.alg == alg)


def qr_codes(
    keys_dir: Path, n: int, now: int, *, device_alg: Alg = "ES256", issuer_alg: Alg = "ES256"
) -> list[dict[str, Any]]:
    """`n` QR scans (§2 credential objects) of `n` e-cards, generated at `now`."""
    signer = issuer(keys_dir, issuer_alg)
    made = []
    for i in range(n):
        device = generate_key(device_alg)
        level1 = signer.issue(i.to_bytes(16, "big"), 19500101 + i % 40 * 10000, f"Q{i:08d}",
                              REGION, device.public_key(), iat=now - 60, exp=now + 86400)
        made.append({"type": "essc_qr", "qr": Phone(level1, device, device_alg).qr(now)})
    return made
