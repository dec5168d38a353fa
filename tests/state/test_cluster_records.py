"""Where a Redis Cluster keeps a request's records, and the commands a decision sends.

The records of a request denied before its credential was verified live with the holder
the credential names (or the terminal, if it names none): a pure function of the
request's bytes, so a retry of the same body finds them without the decision reading a
second slot. Run through the decision pipeline on the real 3+3 cluster.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench import creds
from bench.pipeline import SPOT_GATE, validation_requests
from bench.redis_cluster import RedisClusterNodes, command
from tests.state.cluster_validator import CAPACITY, DAY, SPOT, entry
from validator.clock import FixedClock
from validator.config_folder import load_config
from validator.credentials.kinds import build_verifiers
from validator.credentials.ssc_card import CardTap
from validator.decide import Decider, QrScan, ValidationRequest
from validator.keygen import init_keyset
from validator.keyset import load_keyset
from validator.state import capacity, slots
from validator.state.rediscluster import RedisClusterStore
from validator.state.resp import Arg
from validator.state.resp_cluster import ClusterRespClient
from validator.state.script import COMMIT
from validator.state.store import Committed

CONFIG = Path(__file__).resolve().parents[2] / "config"
SKEW_S = 400  # past the protocol's 300 s


class _CountingClient(ClusterRespClient):
    """The store's own lean cluster client, counting the commands it is asked to send
    (once its slot map is read: `send` goes through `execute` until then)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    async def execute(self, key: str, *command: Arg) -> Any:
        self.sent.append(str(command[0]))
        return await super().execute(key, *command)

    def send(self, key: str, *command: Arg) -> Awaitable[Any]:
        self.sent.append(str(command[0]))
        return super().send(key, *command)


@pytest.fixture
async def counted(
    cluster_url: str, redis_cluster: RedisClusterNodes
) -> AsyncIterator[tuple[RedisClusterStore, _CountingClient]]:
    """A cluster store counting its commands, with its scripts loaded on every primary
    (a primary that does not know a script yet costs a `SCRIPT LOAD` once)."""
    for node in redis_cluster.primaries():
        for script in (COMMIT, capacity.RESERVE, capacity.SETTLE):
            command(node, "SCRIPT", "LOAD", script.source)
    store = RedisClusterStore.from_url(cluster_url)
    counting = _CountingClient(store._hot.seeds)
    await store._hot.close()
    store._hot = counting
    await counting.refresh()
    try:
        yield store, counting
    finally:
        await store.close()


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keys = tmp_path_factory.mktemp("cluster-keys") / "keys"
    init_keyset(keys, region=creds.REGION, terminal_ids=[creds.TERMINAL, SPOT_GATE])
    return keys


def _decider(keys_dir: Path, store: RedisClusterStore, clock: FixedClock) -> Decider:
    return Decider(engine=load_config(CONFIG).engine,
                   verifiers=build_verifiers(load_keyset(keys_dir)), store=store, clock=clock)


def _named(keys_dir: Path, req: ValidationRequest) -> str | None:
    credential = req.credential
    return build_verifiers(load_keyset(keys_dir))[credential.kind].named_holder(credential)


def _apart(keys_dir: Path, reqs: list[ValidationRequest]) -> list[ValidationRequest]:
    """Requests whose named holder's group is not their terminal's: where a record in
    the wrong one of the two would not be found."""
    return [r for r in reqs if slots.group_of(_named(keys_dir, r) or r.terminal_id)
            != slots.group_of(r.terminal_id)]


@pytest.mark.parametrize("kind", ["card", "QR ES256"])
async def test_a_retry_of_an_early_deny_is_answered_the_same_on_the_cluster(
    kind: str, keys_dir: Path, counted: tuple[RedisClusterStore, _CountingClient]
) -> None:
    """A terminal clock 400 s ahead: clock_skew. Its retry, once the server's clock has
    caught up, would pass every check: it gets the stored deny, byte for byte, and the
    credential's token is not spent (a new request with it is accepted). Every decision
    and every retry is one command: the commit's script."""
    store, client = counted
    scanned = int(dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC).timestamp())
    clock = FixedClock(scanned - SKEW_S)
    decider = _decider(keys_dir, store, clock)
    reqs = _apart(keys_dir, validation_requests(keys_dir, CONFIG, kind, 8, now=scanned))
    assert reqs
    for req in reqs:
        clock.set(scanned - SKEW_S)
        client.sent.clear()
        first = await decider.validate(req)
        assert orjson.loads(first.response)["reason"] == "clock_skew"
        assert client.sent == ["EVALSHA"]  # the deny's commit, nothing else
        clock.set(scanned)
        client.sent.clear()
        again = await decider.validate(req)
        assert again.response == first.response and again.record is None
        assert client.sent == ["EVALSHA"]  # one command, as for any decision
        fresh = await decider.validate(replace(req, request_id=req.request_id + "-new"))
        assert orjson.loads(fresh.response)["decision"] == "accept"
        # The other way round: an accept's retry that now fails a check before the
        # holder is verified is answered the accept, from the holder's slot.
        clock.set(scanned + SKEW_S)
        client.sent.clear()
        late = await decider.validate(replace(req, request_id=req.request_id + "-new"))
        assert late.response == fresh.response and client.sent == ["EVALSHA"]


async def test_a_credential_that_names_no_holder_keeps_its_record_with_the_terminal(
    keys_dir: Path, counted: tuple[RedisClusterStore, _CountingClient],
    redis_cluster: RedisClusterNodes,
) -> None:
    """A QR that cannot be parsed, a card tap whose SSN is not ASCII: malformed, their
    records in the terminal's group, where the retry's same bytes lead again."""
    store, client = counted
    scanned = int(dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC).timestamp())
    decider = _decider(keys_dir, store, FixedClock(scanned))
    [qr, card] = (validation_requests(keys_dir, CONFIG, kind, 1, now=scanned)[0]
                  for kind in ("QR ES256", "card"))
    assert isinstance(card.credential, CardTap)
    broken = [
        replace(qr, credential=QrScan("ESSC1:%%%")),
        replace(card, credential=replace(card.credential, ssn="1101011990０3070011")),
    ]
    for req in broken:
        assert _named(keys_dir, req) is None
        client.sent.clear()
        first = await decider.validate(req)
        assert orjson.loads(first.response)["reason"] == "malformed_credential"
        assert client.sent == ["EVALSHA"]
        record = slots.idempotency(slots.group_of(req.terminal_id), req.terminal_id,
                                   req.request_id)
        node = redis_cluster.primary_of(record)
        assert command(node, "EXISTS", record) == b":1\r\n"
        again = await decider.validate(req)
        assert again.response == first.response and again.record is None


async def test_a_spot_entry_is_a_reservation_and_a_commit(
    counted: tuple[RedisClusterStore, _CountingClient], redis_cluster: RedisClusterNodes
) -> None:
    """The used reservation is settled by the next reservation at the spot, in its
    script: the list keeps only the newest, and every entry is counted once."""
    store, client = counted
    listed = slots.reservations(SPOT, DAY)
    node = redis_cluster.primary_of(listed)
    for i, ref in enumerate(("a" * 32, "b" * 32)):
        client.sent.clear()
        assert isinstance(await store.commit(entry(f"spot-{i}", ref)), Committed)
        assert client.sent == ["EVALSHA", "EVALSHA"]  # reserve, commit
        assert command(node, "ZCARD", listed) == b":1\r\n"  # the one not settled yet
    assert command(node, "GET", slots.capacity(SPOT, DAY)).endswith(b"\r\n2\r\n")
    assert CAPACITY == 2
