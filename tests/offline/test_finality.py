"""Settlement finality (protocol §8.4): when a local day's report stops changing."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.admin.client import VIEWER, call
from tests.web.conftest import serving
from tests.web.harness import CONFIG_DIR
from validator.settings import Settings


async def test_without_offline_terminals_a_day_is_final_when_it_ends(
        keys_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    (config / "offline.toml").unlink()
    async with serving(Settings(config_dir=config, keys_dir=keys_dir)) as service:
        today = await call(service, "GET", "/v1/settlement?date=2026-12-02", role=VIEWER)
        yesterday = await call(service, "GET", "/v1/settlement?date=2026-12-01",
                               role=VIEWER)
    assert (today.body["final"], today.body["uploads_until"]) == (
        False, "2026-12-03T00:00:00+08:00")
    assert (yesterday.body["final"], yesterday.body["uploads_until"]) == (
        True, "2026-12-02T00:00:00+08:00")
