"""Micro-benchmark of card-tap verification (protocol §3): `python bench/card_tap.py`.

Prints µs per `CardVerifier.verify` with a warm card-key cache (a returning card: one
CMAC) and with no cache (every tap diversifies the key: SM3 + SM4 + CMAC setup), and the
raw cost of one SM4-CMAC over a message of the §3 size, for comparison.
"""

from __future__ import annotations

import datetime as dt
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms

from terminals_sim.card import Card, card_id_for, make_ssn
from validator.credentials.ssc_card import CardTap, CardVerifier

REGION, TERMINAL, NOW = "369900", "T-BUS-K1-001", 1795000000
TODAY = dt.date(2026, 11, 27)
MASTER_KEY = bytes(range(16))
PEPPER = bytes(32)


def _tap() -> CardTap:
    card = Card(REGION, make_ssn(REGION, dt.date(1950, 3, 1), 13), "A00000001",
                card_id_for(REGION, 1), "20210301", "20310301", 1, MASTER_KEY)
    credential = card.tap(TERMINAL, NOW, "1A2B3C4D")
    return CardTap(**{k: v for k, v in credential.items() if k != "type"})  # type: ignore[arg-type]


def _best_us(func: Callable[[], object], number: int) -> float:
    """Best of 5 runs, in µs per call: the minimum is the least noisy estimate."""
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6


def main() -> None:
    tap = _tap()
    keys = {(REGION, 1): MASTER_KEY}
    warm = CardVerifier(keys, PEPPER)
    cold = CardVerifier(keys, PEPPER, card_key_cache_size=0)
    message = b"x" * 114  # len(M) of §3 with a 12-char terminal id
    card_key = bytes(16)

    def one_cmac() -> bytes:
        mac = cmac.CMAC(algorithms.SM4(card_key))
        mac.update(message)
        return mac.finalize()

    results = {
        "verify, warm key cache": _best_us(lambda: warm.verify(tap, TERMINAL, NOW, TODAY), 20000),
        "verify, cold (no cache)": _best_us(lambda: cold.verify(tap, TERMINAL, NOW, TODAY), 20000),
        "one SM4-CMAC (new context)": _best_us(one_cmac, 20000),
    }
    for name, us in results.items():
        print(f"{name:28s} {us:7.2f} µs")


if __name__ == "__main__":
    main()
