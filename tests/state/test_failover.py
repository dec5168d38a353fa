"""A primary of the cluster killed under traffic: 503 with Retry-After while its slots have
no primary, recovery without a restart once its replica is promoted, and every answer
found exactly once in the ledger afterwards.

The service is the real app on a loopback port (its clock fixed, as in tests/web), its
store `rediscluster://…?min_replicas=1`, so no decision a terminal was told can be lost
with the primary. Bus taps of 24 holders, spread over the groups (and so the primaries),
are sent until the end; a request answered 503 is sent again later, byte for byte with
the same request_id, as a terminal would, until it is answered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from bench.redis_cluster import RedisClusterNodes
from terminals_sim.signing import sign_headers
from terminals_sim.terminal import TerminalClient
from tests.web.harness import CONFIG_DIR, TZ, WED_10, Holder, Service, load_service_keys
from validator.clock import FixedClock
from validator.config_folder import load_config
from validator.keygen import init_keyset
from validator.settings import Settings
from validator.state import slots
from validator.web.app import create_app

TERMINAL = "T-BUS-K1-001"
PATH = "/v1/validations"
HOLDERS = 24
FAILOVER_TIMEOUT_S = 20.0


@dataclass
class Sent:
    body: bytes
    txn_id: str | None = None  # once answered 200


@pytest.fixture
async def service(cluster_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    keys_dir = tmp_path / "keys"
    config = load_config(CONFIG_DIR)
    init_keyset(keys_dir, region=config.city.region, terminal_ids=config.terminals)
    settings = Settings(config_dir=CONFIG_DIR, keys_dir=keys_dir,
                        store_url=cluster_url + "?min_replicas=1", dashboard=False)
    clock = FixedClock(WED_10)
    app = create_app(settings, clock=clock)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    try:
        yield Service(url=str(server.make_url("")).rstrip("/"),
                      terminal_url=str(server.make_url("")).rstrip("/"), app=app, clock=clock,
                      keys_dir=keys_dir, session=session, **load_service_keys(keys_dir))
    finally:
        await session.close()
        await server.close()


async def _post(service: Service, body: bytes) -> tuple[int, dict[str, object], str | None]:
    headers = sign_headers(TERMINAL, service.secrets[TERMINAL], "POST", PATH, body,
                           int(service.clock.now()))
    async with service.session.post(service.url + PATH, data=body, headers=headers) as resp:
        return resp.status, orjson.loads(await resp.read()), resp.headers.get("Retry-After")


async def _send(service: Service, sent: Sent, refusals: Counter[str]) -> bool:
    """One attempt; True once answered. Anything but 200 or 503 store_unavailable fails."""
    status, body, retry_after = await _post(service, sent.body)
    if status == 503:
        assert body["error"] == "store_unavailable" and retry_after is not None, body
        refusals["503"] += 1
        return False
    assert status == 200, (status, body)
    txn_id = str(body["txn_id"])
    assert sent.txn_id in (None, txn_id), "a retry was answered differently"
    sent.txn_id = txn_id
    return True


def _tap(service: Service, holder: Holder) -> bytes:
    now = int(service.clock.now())
    client = TerminalClient(service.session, service.url, TERMINAL, service.secrets[TERMINAL])
    return client.body(dict(holder.card.tap(TERMINAL, now, "0A1B2C3D")),
                       service.scanned_at())


async def test_a_primary_killed_under_traffic(
    service: Service, redis_cluster: RedisClusterNodes
) -> None:
    holders = [service.holder(dt.date(1990, 6, 15)) for _ in range(HOLDERS)]
    victim = redis_cluster.primary_of(slots.holder(holders[0].ref))
    on_victim = [h for h in holders
                 if redis_cluster.primary_of(slots.holder(h.ref)) == victim]
    sent: list[Sent] = []
    refusals: Counter[str] = Counter()

    async def round_of_taps() -> list[Sent]:
        batch = [Sent(_tap(service, h)) for h in holders]
        sent.extend(batch)
        await asyncio.gather(*(_send(service, s, refusals) for s in batch))
        return batch

    await round_of_taps()
    assert all(s.txn_id for s in sent), "the cluster answered before the kill"

    redis_cluster.kill(victim)  # kill -9
    deadline = time.monotonic() + FAILOVER_TIMEOUT_S
    recovered = revived = False
    while not recovered:  # traffic goes on; the victim's holders fail until a promotion
        assert time.monotonic() < deadline, "no recovery after the failover"
        batch = await round_of_taps()
        recovered = all(s.txn_id for s in batch[-1:]) and refusals["503"] > 0 and \
            all(s.txn_id for s, h in zip(batch, holders, strict=True) if h in on_victim)
        if not recovered:
            if not revived and len(redis_cluster.primaries()) == 3:
                redis_cluster.revive(victim)  # promoted: the new primary gets a replica
                revived = True
            await asyncio.sleep(0.2)
    assert refusals["503"] > 0, "the kill was never noticed"

    # The terminals send every refused request again until it is answered.
    for _ in range(50):
        pending = [s for s in sent if s.txn_id is None]
        if not pending:
            break
        await asyncio.gather(*(_send(service, s, refusals) for s in pending))
        await asyncio.sleep(0.1)
    assert all(s.txn_id for s in sent)

    # Every answer exactly once in the ledger, and nothing else in it.
    store, day = service.store, dt.datetime.fromtimestamp(WED_10, TZ).date()
    ledgered, after = [], None
    while page := await store.ledger_read(day, after, 500):
        ledgered += [orjson.loads(record)["txn_id"] for _, record in page]
        after = page[-1][0]
    assert Counter(ledgered) == Counter(s.txn_id for s in sent)
    redis_cluster.wait_ok()
