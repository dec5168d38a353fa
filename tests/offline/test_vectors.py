"""The vectors of docs/protocol.md §8.2, from the service and from the simulator's reader."""

from __future__ import annotations

import datetime as dt

import cbor2

from terminals_sim.offline_bundle import OfflineBundle
from validator.offline import eligibility
from validator.policy.types import Category

REF = bytes.fromhex("00112233445566778899aabbccddeeff")
SALT = bytes.fromhex("0f0e0d0c0b0a09080706050403020100")
SEALED = bytes.fromhex("3ff57413f7613e6e27b22c0f0212dd8fe9c92fbacd6e90cadce5257340")
CATEGORIES = [Category("disabled", 2, dt.date(2027, 6, 30)), Category("veteran")]


def test_the_service_derives_and_seals_the_documented_bytes() -> None:
    index, key, hold = eligibility.derive(REF, SALT)
    assert (index.hex(), key.hex(), hold.hex()) == (
        "d17b0fd99b2f242e",
        "1d0413ce6c24dc56f6707732f9b1e069fc8ea145027ca58152f6135c969e229a",
        "137995f07de6e69f")
    assert cbor2.dumps([[2, 2, 20270630], [1, 0, 0]]).hex() == "828302021a01354e2683010000"
    assert eligibility.seal(REF, SALT, CATEGORIES) == (index, SEALED)
    assert eligibility.card_index("A12345678", SALT).hex() == "eecaa503b7c1ec3a"
    assert eligibility.unseal(REF, SALT, SEALED) == CATEGORIES


def test_the_simulator_reads_the_documented_bytes() -> None:
    bundle = OfflineBundle(seq=1, exp=2, salt=SALT)
    bundle.lists["eligibility"][bytes.fromhex("d17b0fd99b2f242e")] = SEALED
    bundle.lists["blocked_holders"][bytes.fromhex("137995f07de6e69f")] = 20261231
    bundle.lists["blocked_cards"][bytes.fromhex("eecaa503b7c1ec3a")] = 0
    assert bundle.categories(REF) == [
        {"code": "disabled", "grade": 2, "until": dt.date(2027, 6, 30)},
        {"code": "veteran", "grade": None, "until": None}]
    assert bundle.holder_block_until(REF) == (True, dt.date(2026, 12, 31))
    assert bundle.card_block_until("A12345678") == (True, None)
    assert bundle.categories(bytes(16)) == []
