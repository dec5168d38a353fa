"""A real validator on loopback, with offline terminals enabled, over both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# The key set with the operator tokens tests/admin/client.py signs with (settlement,
# the dashboard).
from tests.admin.conftest import config_dir, keys_dir
from tests.web.conftest import serving
from tests.web.harness import CONFIG_DIR, Service
from validator.settings import Settings

__all__ = ["config_dir", "keys_dir", "service"]


@pytest.fixture(params=["memory", "redis"])
async def service(request: pytest.FixtureRequest, keys_dir: Path) -> AsyncIterator[Service]:
    store_url = "memory" if request.param == "memory" else request.getfixturevalue("redis_url")
    async with serving(Settings(config_dir=CONFIG_DIR, keys_dir=keys_dir,
                                store_url=store_url)) as service:
        yield service
