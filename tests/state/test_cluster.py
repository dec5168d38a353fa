"""What only a Redis Cluster store must show: its key layout, its URL, and a spot's
capacity when a validator dies between the reservation and the commit.

The rest of the store's behaviour is the contract suite (test_contract.py), which runs
against the cluster too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.redis_cluster import RedisClusterNodes, command, free_cluster_ports
from tests.state.cluster_validator import CAPACITY, DAY, SPOT, TTL_MS, entry
from validator.state import StoreUrlError, open_store, slots
from validator.state.rediscluster import RedisClusterStore, parse_cluster_url
from validator.state.resp_cluster import key_slot
from validator.state.store import (
    Block,
    Commit,
    Committed,
    Conflict,
    Duplicate,
    Guard,
    SnapshotQuery,
    StoreUnavailable,
)

REF = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
CARD_ID = "369900D156000005" + "00AB12CD34EF5678"


@pytest.fixture
async def cluster_store(cluster_url: str) -> AsyncIterator[RedisClusterStore]:
    store = RedisClusterStore.from_url(cluster_url, clock_margin_ms=100)
    try:
        yield store
    finally:
        await store.close()


def test_the_fixture_is_three_primaries_each_with_a_replica(
    redis_cluster: RedisClusterNodes, cluster_url: str
) -> None:
    assert len(redis_cluster.primaries()) == 3 and len(redis_cluster.replicas()) == 3
    assert all(port < 55535 for port in redis_cluster.ports)


def test_every_key_of_a_holders_commit_shares_one_slot(redis_cluster: RedisClusterNodes) -> None:
    full = Commit(terminal_id="T-GATE-S03-01", request_id="r-1", body_sha256="0" * 64,
                  response=b"{}", ledger=b"{}", local_date=DAY, holder_ref=REF,
                  nonce=b"n" * 8, card_id=CARD_ID, atc=3, concession_ride_cap=4,
                  spot_id="S03", spot_capacity=9, concession_entry=True,
                  companion_use=1.5, companion_open_at=2.5, assume_no_status=True,
                  card_no="A12345678")
    named = slots.commit_keys(full, "token")
    assert set(named) == {"idempotency", "ledger", "nonce", "atc", "rides", "entered",
                          "companion", "holder_block", "registry", "card_block",
                          "reservation"}
    node = redis_cluster.ports[0]
    assert len({command(node, "CLUSTER", "KEYSLOT", key) for key in named.values()}) == 1
    # A request that yields no holder: the terminal's slot, its records only.
    early = Commit(terminal_id="T-GATE-S03-01", request_id="r-2", body_sha256="0" * 64,
                   response=b"{}", ledger=b"{}", local_date=DAY)
    assert set(slots.commit_keys(early, None)) == {"idempotency", "ledger"}
    assert slots.commit_keys(early, None)["idempotency"].startswith(
        f"v2:{slots.tag(slots.group_of(early.terminal_id))}:")
    # One that names a holder, unverified: that holder's slot, as its verified retry.
    naming = dataclasses.replace(early, named_holder=REF)
    assert slots.group_of(REF) != slots.group_of(early.terminal_id)
    assert {command(node, "CLUSTER", "KEYSLOT", key)
            for key in (*slots.commit_keys(naming, None).values(), *named.values())} == \
        {command(node, "CLUSTER", "KEYSLOT", named["idempotency"])}
    assert all(key.startswith("v2:") and "{" in key for key in named.values())


def test_cluster_urls_parse_or_name_what_is_wrong() -> None:
    parsed = parse_cluster_url("rediscluster://:s%40cret@10.0.0.1:7000,[::1]:7001?ssl=true")
    assert parsed.nodes == (("10.0.0.1", 7000), ("::1", 7001))
    assert parsed.password == "s@cret" and parsed.tls
    for bad, says in (("rediscluster://", "seed node"),
                      ("rediscluster://h:1,h", "seed node 'h'"),
                      ("rediscluster://h:99999", "seed node"),
                      ("rediscluster://h:1?min_replica=1", "unknown option 'min_replica'"),
                      ("rediscluster://h:1?ssl_ca_certs=/ca.pem", "unknown option"),
                      ("rediscluster://h:1?ssl=maybe", "ssl='maybe'"),
                      ("rediscluster://h:1?min_replicas=one", "min_replicas='one'")):
        with pytest.raises(StoreUrlError, match=says):
            asyncio.run(open_store(bad))


async def test_snapshot_reads_across_slots(cluster_store: RedisClusterStore) -> None:
    await cluster_store.put_block("card", "A12345678", Block(reason="lost"))
    c = entry("first-0001", REF)
    assert isinstance(await cluster_store.commit(c), Committed)
    snap = await cluster_store.snapshot(SnapshotQuery(
        terminal_id=c.terminal_id, request_id="other-0001", local_date=DAY, holder_ref=REF,
        card_no="A12345678", spot_id=SPOT))
    assert snap.card_block is not None and snap.spot_entries_today == 1


async def test_a_slot_answered_by_another_primary_is_followed_there(
    cluster_store: RedisClusterStore,
) -> None:
    """The store's map names the wrong primary for a slot, as after a failover: MOVED
    leads both an awaited call (the commit) and a gathered one (a snapshot's MGET beside
    the spot's count) to the right one, and the map is corrected."""
    hot = cluster_store._hot
    await hot.refresh()
    c = entry("moved-0001", REF)
    slot = key_slot(slots.idempotency(slots.commit_group(c), c.terminal_id, c.request_id))
    right = hot._primaries[slot]
    wrong = next(node for node in hot._primaries if node != right)
    hot._primaries[slot] = wrong
    assert isinstance(await cluster_store.commit(c), Committed)
    assert hot._primaries[slot] == right
    await hot.refresh()  # the map read again after MOVED, not while the snapshot runs
    hot._primaries[slot] = wrong
    snap = await cluster_store.snapshot(SnapshotQuery(
        terminal_id=c.terminal_id, request_id=c.request_id, local_date=DAY, holder_ref=REF,
        spot_id=SPOT))
    assert snap.stored is not None and snap.spot_entries_today == 1
    assert hot._primaries[slot] == right


def _validator(url: str, mode: str, request_id: str, holder_ref: str) -> subprocess.Popen[str]:
    """A validator process, started and waiting to reserve (`_go`)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.state.cluster_validator", url, mode, request_id,
         holder_ref], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _go(proc: subprocess.Popen[str], mode: str) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == mode  # it stopped where it should


async def test_a_validator_killed_between_reservation_and_commit(
    cluster_url: str, cluster_store: RedisClusterStore, redis_cluster: RedisClusterNodes
) -> None:
    # One validator dies holding an unused reservation, another after its commit but
    # before settling it: the spot (capacity 2) is full.
    # Both started first: their reservations are made well within their 3 s however
    # long a Python process takes to start.
    dying = [(mode, _validator(cluster_url, mode, request_id, ref))
             for mode, request_id, ref in (("reserved", "dead-0001", "a" * 32),
                                           ("committed", "dead-0002", "b" * 32))]
    for mode, proc in dying:
        _go(proc, mode)
        proc.kill()  # kill -9, between the steps
        proc.wait(timeout=10)
        assert proc.stdout is not None and proc.stdin is not None
        proc.stdout.close()
        proc.stdin.close()
    newcomer = entry("new-0001", "c" * 32)
    query = SnapshotQuery(terminal_id=newcomer.terminal_id, request_id="probe-0001",
                          local_date=DAY, spot_id=SPOT)
    assert (await cluster_store.snapshot(query)).spot_entries_today == CAPACITY
    result = await cluster_store.commit(newcomer)
    assert result == Conflict(Guard.CAPACITY)  # both reservations still within their time

    await asyncio.sleep(TTL_MS / 1000 + 0.2)  # past both reservations and the margin
    assert isinstance(await cluster_store.commit(entry("new-0002", "c" * 32)), Committed)
    # The unused reservation was given back, the used one kept: exactly the two entries
    # in the ledger are counted, and the spot is full again.
    assert (await cluster_store.snapshot(query)).spot_entries_today == CAPACITY
    ledger = [record for _, record in await cluster_store.ledger_read(DAY)]
    assert sorted(ledger) == [b'{"request":"dead-0002"}', b'{"request":"new-0002"}']
    assert await cluster_store.commit(entry("new-0003", "d" * 32)) == Conflict(Guard.CAPACITY)


async def test_a_card_block_denies_its_scans_through_any_holder_until_removed(
    cluster_store: RedisClusterStore,
) -> None:
    """Blocked before or after a card's first scan, whichever holder's group the scan
    lands in (a card is copied into every group); removed, from every group."""
    refs = [f"{i:032x}" for i in range(400)]
    groups = {slots.group_of(ref): ref for ref in refs}
    assert len(groups) == slots.GROUPS  # a holder in every group

    def tap(request_id: str, ref: str) -> Commit:
        return Commit(terminal_id="T-BUS-K1-001", request_id=request_id, body_sha256="0" * 64,
                      response=b"{}", ledger=b"{}", local_date=DAY, holder_ref=ref,
                      card_no="A12345678", assume_no_status=True)

    assert isinstance(await cluster_store.commit(tap("seen-0001", REF)), Committed)
    await cluster_store.put_block("card", "A12345678", Block(reason="lost"))
    for group, ref in groups.items():
        assert await cluster_store.commit(tap(f"blocked-{group}", ref)) == Conflict(Guard.STATUS)
    assert await cluster_store.commit(tap("blocked-seen", REF)) == Conflict(Guard.STATUS)
    snap = await cluster_store.snapshot(SnapshotQuery(
        terminal_id="T-BUS-K1-001", request_id="probe-0001", local_date=DAY,
        holder_ref=REF, card_no="A12345678"))
    assert snap.card_block == Block(reason="lost")
    assert await cluster_store.delete_block("card", "A12345678") == Block(reason="lost")
    for group, ref in groups.items():
        assert isinstance(await cluster_store.commit(tap(f"free-{group}", ref)), Committed)


async def test_min_replicas_answers_a_commit_only_once_a_replica_has_it(
    cluster_url: str, redis_cluster: RedisClusterNodes
) -> None:
    store = RedisClusterStore.from_url(cluster_url + "?min_replicas=1")
    try:
        first = entry("wait-0001", REF)
        assert isinstance(await store.commit(first), Committed)
        primary = redis_cluster.primary_of(slots.holder(REF))
        replica = redis_cluster.replica_of(primary)
        redis_cluster.pause(replica)
        try:  # the commit is applied on the primary, but not answered as done
            with pytest.raises(StoreUnavailable, match="replicas"):
                await store.commit(entry("wait-0002", REF))
        finally:
            redis_cluster.resume(replica)
        # The terminal's retry is answered from the stored record: nothing twice.
        assert isinstance(await store.commit(entry("wait-0002", REF)), Duplicate)
    finally:
        await store.close()


def _settlement(store_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "validator", "settlement", "--date",
                           "2026-12-02", "--store", store_url],
                          capture_output=True, text=True, timeout=60)


def _one_line_exit_2(result: subprocess.CompletedProcess[str], *says: str) -> None:
    assert result.returncode == 2, result
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    for text in says:
        assert text in result.stderr, result.stderr


def test_wrong_stores_are_named_on_one_line(
    redis_cluster: RedisClusterNodes, redis_url: str, tmp_path: Path
) -> None:
    dead = free_cluster_ports(2)
    _one_line_exit_2(_settlement(f"rediscluster://127.0.0.1:{dead[0]},127.0.0.1:{dead[1]}"),
                     f"127.0.0.1:{dead[0]},127.0.0.1:{dead[1]}", "no seed node answers")
    node = redis_cluster.ports[0]
    _one_line_exit_2(_settlement(f"redis://127.0.0.1:{node}/0"),
                     f"redis://127.0.0.1:{node}/0", "node of a Redis Cluster",
                     "rediscluster://")
    plain = redis_url.removeprefix("redis://").removesuffix("/0")
    _one_line_exit_2(_settlement(f"rediscluster://{plain}"), f"rediscluster://{plain}",
                     "plain Redis", f"redis://{plain}/0")
    # A cluster node that serves no slot: the cluster is in state fail.
    [port] = free_cluster_ports(1)
    lone = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--cluster-enabled", "yes", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        while command_or_none(port) is None:
            time.sleep(0.05)
        _one_line_exit_2(_settlement(f"rediscluster://127.0.0.1:{port}"),
                         f"127.0.0.1:{port}", "cluster_state:fail")
    finally:
        lone.kill()
        lone.wait(timeout=10)


def command_or_none(port: int) -> bytes | None:
    try:
        return command(port, "PING")
    except OSError:
        return None
