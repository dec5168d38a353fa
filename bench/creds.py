"""Credentials and signed requests for benchmarks, made with the simulator's card and
e-card code.

Everything is built before any clock starts: a QR costs an issuer and a device signature
to make, which is not what a benchmark of the validator should time. `signed` is the one
place a terminal request is put together (body, `X-Timestamp`, `X-Signature` of §4):
bench/wrk_requests.py writes its output for `wrk`, bench/openloop.py sends it itself.

Card taps come in two modes (`CardMode`): "fresh", every tap a new card's first (the
validator derives its key and holder_ref and caches both: the dearest tap), and
"returning", a pool of cards tapping again and again, counters rising, so the
validator's per-card caches are warm as for a city's regular passengers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from terminals_sim.card import Card, card_id_for, make_ssn, new_un
from terminals_sim.ecard import (
    Issuer,
    Phone,
    generate_key,
    key_from_bytes,
    load_issuers,
    private_bytes,
)

REGION = "369900"  # the default city's card region (config/city.toml)
TERMINAL = "T-BUS-K1-001"  # a bus reader of config/terminals.toml
PATH = "/v1/validations"
Alg = Literal["ES256", "EdDSA", "SM2"]
CardMode = Literal["fresh", "returning"]
CARD_MODES: tuple[CardMode, ...] = ("fresh", "returning")
Credential = dict[str, Any]

# Returning cards per run: request i is card i % CARDS, so a card taps again CARDS
# requests later, 3.3 s at 6,000/s and 2 s at 10,000/s (`make bench`'s top rate). Why
# that keeps a card's taps apart and in order, whatever the timing: requests leave in
# index order, over 64 connections with one request in flight on each (bench/sender.py;
# `wrk -t1` too). While tap i is in flight at most 63 others are, so tap i + CARDS is
# sent only after the answers to CARDS - 64 = 19,936 requests sent after tap i. Unless
# the server answers that many later requests before tap i, tap i is answered - its
# counter committed - before the next tap of its card leaves: no `replayed` (equal
# counter) or `card_clone_suspected` (lower) can come of it. And 20,000 is under the
# validator's card-key and holder_ref LRUs (`card_key_cache_size`, 65,536): a circle
# through more cards than an LRU holds would miss it on every tap.
CARDS = 20_000
# The holders who come back — returning cards, and the e-card holders behind the QR
# scans — are born 20 to 54 years before the run's year (19-55 years old), under every
# age-based bus fare (60+, policy.md) and so under no daily ride cap. Each of them
# comes back many times a run (a QR holder ~2 times a second at 4,000/s), where a real
# senior rides a few times a day: a senior past the cap (4 a day) is still accepted
# with reason ok (full fare: no mismatch), but only after the speculative commit's
# ride-cap guard failed and the pipeline read and decided again — two more Redis round
# trips that real traffic rarely takes. With the old 1950-1999 mix (34 % seniors) a
# fifth to a quarter of all QR scans took that path (16 % of a ceiling run's
# validations read a snapshot). A pool keeping every senior under the cap
# would need a quarter of a step's requests as holders and would still not do: the
# cap counts per holder (SSN) per day, and a run's steps share holders.
NO_CAP_BIRTH_YEARS = range(20, 55)  # years before the run's (UTC) year


class SignedRequest(NamedTuple):
    """One terminal request of §4 as it goes on the wire: its three headers and body."""

    terminal: str
    timestamp: int
    signature: str
    body: bytes


def master_keys(keys_dir: Path) -> dict[tuple[str, int], bytes]:
    doc = json.loads((keys_dir / "card-master-keys.json").read_text())
    return {(k["region"], k["kv"]): bytes.fromhex(k["key"]) for k in doc["keys"]}


def terminal_secrets(keys_dir: Path) -> dict[str, bytes]:
    doc = json.loads((keys_dir / "terminal-secrets.json").read_text())
    return {terminal: bytes.fromhex(secret) for terminal, secret in doc.items()}


def terminal_secret(keys_dir: Path, terminal_id: str = TERMINAL) -> bytes:
    return terminal_secrets(keys_dir)[terminal_id]


def bus_terminals(keys_dir: Path, n: int) -> list[str]:
    """The first `n` bus readers of the key set (bus fares accept every valid holder)."""
    buses = sorted(t for t in terminal_secrets(keys_dir) if t.startswith("T-BUS-"))
    if not buses:
        raise ValueError(f"{keys_dir}: no T-BUS-* terminal has a secret")
    return buses[:max(n, 1)]


def signed(credentials: Iterable[tuple[str, Credential]], secrets_by_terminal: dict[str, bytes],
           now: int) -> Iterator[SignedRequest]:
    """Each (terminal, credential) as a request signed at `now`, with a fresh request_id."""
    scanned = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()  # = a cryptogram's time
    for terminal, credential in credentials:
        body = json.dumps({"request_id": secrets.token_urlsafe(12), "scanned_at": scanned,
                           "credential": credential}, separators=(",", ":")).encode()
        digest = hashlib.sha256(body).hexdigest()
        signature = hmac.new(secrets_by_terminal[terminal],
                             f"POST\n{PATH}\n{now}\n{digest}".encode(), hashlib.sha256)
        yield SignedRequest(terminal, now, signature.hexdigest(), body)


# --- card taps ---------------------------------------------------------------------------

def cards(keys_dir: Path, n: int, *, first_serial: int = 10_000_000) -> list[Card]:
    """`n` cards of holders born 1950–1999 (seniors and others), fresh counters."""
    key = master_keys(keys_dir)[(REGION, 1)]
    return [_card(key, first_serial + i, dt.date(1950 + i % 50, 1 + i % 12, 1 + i % 28))
            for i in range(n)]


def _card(master_key: bytes, serial: int, birth: dt.date) -> Card:
    """The simulator's card with this serial, of a holder born on `birth`."""
    return Card(region=REGION, ssn=make_ssn(REGION, birth, serial % 1000),
                card_no=f"C{serial % 10**8:08d}", card_id=card_id_for(REGION, serial),
                issued="20240101", expires="20341231", kv=1, master_key=master_key)


def card_taps(
    keys_dir: Path, n: int, now: int, terminal_id: str = TERMINAL
) -> list[dict[str, Any]]:
    """One tap (§3 credential object) from each of `n` fresh cards, made at `now`: cards
    never seen before, whatever ran earlier against the same store (`random_serial`)."""
    return [dict(card.tap(terminal_id, now, os.urandom(4).hex().upper()))
            for card in cards(keys_dir, n, first_serial=random_serial())]


def random_serial() -> int:
    """A first card serial for a run: a card tapped again from counter 1 would be
    `replayed`, so every run takes its cards from a random place in 62 bits."""
    return secrets.randbelow(1 << 62)


def fresh_card_taps(keys_dir: Path, n: int, now: int, terminals: Sequence[str], *,
                    first_serial: int) -> Iterator[tuple[str, Credential]]:
    """The first tap of `n` new cards, spread over `terminals` in turn."""
    for i, card in enumerate(cards(keys_dir, n, first_serial=first_serial)):
        terminal = terminals[i % len(terminals)]
        yield terminal, dict(card.tap(terminal, now, new_un()))


def returning_card_taps(keys_dir: Path, indices: range, now: int, terminals: Sequence[str],
                        *, first_serial: int, pool: int = CARDS
                        ) -> Iterator[tuple[str, Credential]]:
    """Tap `i` of `indices`: card `i % pool` (serial `first_serial + i % pool`), its
    tap number `i // pool + 1`, at terminal `i % len(terminals)`.

    Everything depends on `i` alone, so ranges built apart (one per process) make the
    same taps as one range. Holders are 19-55 years old (`NO_CAP_BIRTH_YEARS`), each
    card its own holder in pools up to 21,000 (birth dates repeat every 420 cards, SSN
    sequence codes every 1,000).
    """
    key = master_keys(keys_dir)[(REGION, 1)]
    year, ages = dt.datetime.fromtimestamp(now, dt.UTC).year, NO_CAP_BIRTH_YEARS
    made: dict[int, Card] = {}
    for i in indices:
        c = i % pool
        card = made.get(c)
        if card is None:
            birth = dt.date(year - ages[c % len(ages)], 1 + c % 12, 1 + c % 28)
            card = made[c] = _card(key, first_serial + c, birth)
        card.atc = i // pool  # the taps it made before this one; `tap` counts this one
        terminal = terminals[i % len(terminals)]
        yield terminal, dict(card.tap(terminal, now, new_un()))


# --- e-card QR codes ---------------------------------------------------------------------

def issuer(keys_dir: Path, alg: Alg) -> Issuer:
    return next(i for i in load_issuers(keys_dir) if i.alg == alg)


def qr_codes(
    keys_dir: Path, n: int, now: int, *, device_alg: Alg = "ES256", issuer_alg: Alg = "ES256",
    first: int = 0,
) -> list[dict[str, Any]]:
    """`n` QR scans (§2 credential objects) of `n` e-cards, generated at `now`: the
    holders numbered from `first` (the same numbers, the same holders)."""
    signer = issuer(keys_dir, issuer_alg)
    made = []
    for i in range(first, first + n):
        device = generate_key(device_alg)
        level1 = signer.issue(i.to_bytes(16, "big"), 19500101 + i % 40 * 10000, f"Q{i:08d}",
                              REGION, device.public_key(), iat=now - 60, exp=now + 86400)
        made.append({"type": "essc_qr", "qr": Phone(level1, device, device_alg).qr(now)})
    return made


@dataclass(frozen=True)
class EcardHolder:
    """A phone as plain bytes (level-1 credential, device private key), so that a list of
    them can be saved, and handed to the processes that pre-build QR codes."""

    level1: bytes
    device_key: bytes
    alg: Alg

    def phone(self) -> Phone:
        return Phone(self.level1, key_from_bytes(self.alg, self.device_key), self.alg)


def ecard_holders(keys_dir: Path, n: int, now: int, *, issuer_alg: Alg = "ES256",
                  device_algs: Sequence[Alg] = ("ES256", "EdDSA")) -> list[EcardHolder]:
    """`n` e-card holders 19-55 years old (`NO_CAP_BIRTH_YEARS`: they scan many times a
    run), device keys taking `device_algs` in turn; their credentials are valid for a day."""
    signer = issuer(keys_dir, issuer_alg)
    year, ages = dt.datetime.fromtimestamp(now, dt.UTC).year, NO_CAP_BIRTH_YEARS
    made = []
    for i in range(n):
        alg = device_algs[i % len(device_algs)]
        device = generate_key(alg)
        birth = (year - ages[i % len(ages)]) * 10000 + (1 + i % 12) * 100 + 1 + i % 28
        level1 = signer.issue(i.to_bytes(16, "big"), birth, f"Q{i:08d}",
                              REGION, device.public_key(), iat=now - 60, exp=now + 86400)
        made.append(EcardHolder(level1, private_bytes(device), alg))
    return made


def qr_scans(holders: Sequence[EcardHolder], indices: range, gen_time: int,
             terminals: Sequence[str]) -> Iterator[tuple[str, Credential]]:
    """Scan `i` of `indices`: a fresh QR (new nonce) of holder `i % len(holders)`, shown
    at terminal `i % len(terminals)`."""
    phones: dict[int, Phone] = {}
    for i in indices:
        h = i % len(holders)
        phone = phones.get(h) or phones.setdefault(h, holders[h].phone())
        yield terminals[i % len(terminals)], {"type": "essc_qr", "qr": phone.qr(gen_time)}
