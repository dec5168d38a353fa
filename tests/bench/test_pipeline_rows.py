"""`make bench`'s decision rows on one Redis and on a Redis Cluster (`BENCH_STORE=cluster`):
both run against real servers and count the round trips a decision makes, the figure
docs/benchmarks.md sets beside the CPU per validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import creds, pipeline
from validator.keygen import init_keyset

CONFIG = Path(__file__).resolve().parents[2] / "config"
KINDS = ("card", "card at a spot")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    made = tmp_path_factory.mktemp("pipeline") / "keys"
    init_keyset(made, region=creds.REGION, terminal_ids=[creds.TERMINAL, pipeline.SPOT_GATE])
    return made


@pytest.fixture(autouse=True)
def few(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "SIZES", dict.fromkeys(KINDS, 40))


def rows_by_name(rows: list[pipeline.Row]) -> dict[str, pipeline.Row]:
    return {row["name"]: row for row in rows}


async def test_one_redis_answers_a_bus_tap_and_a_spot_entry_in_one_round_trip(
        keys: Path, redis_url: str) -> None:
    rows = rows_by_name(await pipeline.pipeline_rows(keys, CONFIG, redis_url, KINDS))
    for kind in KINDS:
        memory = rows[f"decision without HTTP, {kind} (memory store)"]
        redis = rows[f"decision without HTTP, {kind} (Redis store, client CPU)"]
        assert memory["redis_commands"] is None and memory["us"] > 0
        assert redis["redis_commands"] == 1.0 and redis["us"] > 0 and redis["redis_us"] > 0


async def test_the_cluster_pays_a_spot_entry_with_a_second_round_trip(
        keys: Path, cluster_url: str) -> None:
    rows = rows_by_name(await pipeline.pipeline_rows(keys, CONFIG, cluster_url, KINDS))
    label = "Redis Cluster store, client CPU"
    bus = rows[f"decision without HTTP, card ({label})"]
    spot = rows[f"decision without HTTP, card at a spot ({label})"]
    assert bus["redis_commands"] == 1.0  # snapshot and commit: one script, the holder's slot
    assert spot["redis_commands"] == 2.0  # the capacity reservation, in the spot's slot
    assert "2.00 Redis commands (round trips)" in spot["note"]
    assert spot["redis_us"] > 0  # every node's CPU, read with INFO
