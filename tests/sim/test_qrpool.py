"""Pre-built QR codes: valid where they are used, each used once, built live if short."""

from __future__ import annotations

import base45
import cbor2

from terminals_sim.cityconf import CityConfig
from terminals_sim.ecard import private_bytes
from terminals_sim.keyset import SimKeys
from terminals_sim.population import Population
from terminals_sim.qrpool import LEAD_S, WINDOW_S, QrPool, build_qrs


def _gen_time(qr: str) -> int:
    outer = cbor2.loads(base45.b45decode(qr.removeprefix("ESSC1:")))
    return int(cbor2.loads(outer.value[2])[2])


async def test_windows_and_fallback(keys: SimKeys, city: CityConfig) -> None:
    holders = Population(keys, city, seed=4).generate(20)
    with_ecard = [h for h in holders if h.has_ecard]
    start = 1_800_000_000.0
    pool = QrPool(start)
    await pool.prebuild(with_ecard, total=200, duration_s=120, workers=1)
    assert pool.windows == 3
    h = with_ecard[0]
    seen = set()
    for wall in (start, start + 49.9, start + 50, start + 149):
        qr, gen_time = pool.take(h, wall)
        assert _gen_time(qr) == gen_time
        assert -30 <= gen_time - wall <= LEAD_S and wall - gen_time <= 60 - 5
        seen.add(qr)
    assert len(seen) == 4 and pool.built_live == 0
    # past the last window the codes would be too old: built live, fresh
    late = start + 3 * WINDOW_S + 40
    _, gen_time = pool.take(h, late)
    assert gen_time == int(late) and pool.built_live == 1


async def test_pool_runs_dry_then_builds_live(keys: SimKeys, city: CityConfig) -> None:
    h = next(x for x in Population(keys, city, seed=5).generate(10) if x.has_ecard)
    pool = QrPool(1_800_000_000.0)
    await pool.prebuild([h], total=3, duration_s=10, workers=1)
    stock = len(pool.codes[(0, h.ref)])
    codes = {pool.take(h, 1_800_000_001.0)[0] for _ in range(stock + 2)}
    assert len(codes) == stock + 2 and pool.built_live == 2


def test_worker_builds_the_same_phone(keys: SimKeys, city: CityConfig) -> None:
    """`build_qrs` (a process-pool task) rebuilds the phone from bytes: same level 1."""
    h = next(x for x in Population(keys, city, seed=6).generate(10) if x.has_ecard)
    key = private_bytes(h.phone.device_private_key)
    codes = build_qrs(h.phone.level1, key, h.phone.alg, 1_800_000_000, 3)
    assert len(set(codes)) == 3
    outer = cbor2.loads(base45.b45decode(codes[0].removeprefix("ESSC1:")))
    assert cbor2.loads(outer.value[2])[1] == h.phone.level1
