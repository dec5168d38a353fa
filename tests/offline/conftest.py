"""A real validator on loopback, with offline terminals enabled, over both stores."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.admin.client import ADMIN_TOKEN, VIEWER_TOKEN
from tests.web.conftest import serving
from tests.web.harness import CONFIG_DIR, Service
from validator.config import load_config
from validator.keygen import init_keyset
from validator.settings import Settings


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    config = load_config(CONFIG_DIR)
    init_keyset(directory, region=config.city.region, terminal_ids=config.terminals)
    # the operator tokens tests/admin/client.py signs with (settlement, the dashboard)
    tokens = [("ops-admin", "admin", ADMIN_TOKEN), ("ops-viewer", "viewer", VIEWER_TOKEN)]
    (directory / "operator-tokens.json").write_text(json.dumps({"tokens": [
        {"name": name, "role": role, "sha256": hashlib.sha256(token.encode()).hexdigest()}
        for name, role, token in tokens]}))
    return directory


@pytest.fixture(params=["memory", "redis"])
async def service(request: pytest.FixtureRequest, keys_dir: Path) -> AsyncIterator[Service]:
    store_url = "memory" if request.param == "memory" else request.getfixturevalue("redis_url")
    async with serving(Settings(config_dir=CONFIG_DIR, keys_dir=keys_dir,
                                store_url=store_url)) as service:
        yield service
