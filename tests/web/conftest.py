"""The `service` fixture: a real validator on loopback over each store (memory, Redis).

`front` says which HTTP front the terminal requests of a test go through:
`service.terminal_url` is aiohttp's port, or the lean terminal front's
(validator/web/terminal/front.py, `serve --terminal-port`). Outside tests/web it is "aiohttp";
every test in tests/web that takes `service` runs through both, so the terminal API's
HTTP tests hold for either port.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.web.harness import CONFIG_DIR, WED_10, Service, load_service_keys
from validator.clock import FixedClock
from validator.config_folder import load_config
from validator.keygen import init_keyset
from validator.settings import Settings
from validator.web.app import create_app
from validator.web.appkeys import TERMINAL_FRONT
from validator.web.terminal.front import DEFAULT_CONNECTION_LIMITS, ConnectionLimits


@pytest.fixture
def config_dir() -> Path:
    """The default configuration; a test may override this fixture with its own copy."""
    return CONFIG_DIR


@pytest.fixture
def edit_config(tmp_path: Path) -> Callable[[str, str, str], Path]:
    """Copy config/ and replace one string in one file: for tiny capacities and the like."""
    def edit(file: str, old: str, new: str) -> Path:
        target = tmp_path / "config"
        if not target.exists():
            shutil.copytree(CONFIG_DIR, target)
        text = (target / file).read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {file}"
        (target / file).write_text(text.replace(old, new, 1), encoding="utf-8")
        return target
    return edit


@pytest.fixture
def keys_dir(tmp_path: Path, config_dir: Path) -> Path:
    directory = tmp_path / "keys"
    config = load_config(config_dir)
    init_keyset(directory, region=config.city.region, terminal_ids=config.terminals)
    return directory


FRONTS = ("aiohttp", "lean")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "front" in metafunc.fixturenames and not _pinned(metafunc, "front"):
        metafunc.parametrize("front", FRONTS)


def _pinned(metafunc: pytest.Metafunc, name: str) -> bool:
    return any(name in mark.args[0] for mark in metafunc.definition.iter_markers("parametrize"))


@pytest.fixture
def front() -> str:
    """aiohttp's port, unless pytest_generate_tests above parametrizes it (tests/web)."""
    return "aiohttp"


@pytest.fixture
def connection_limits() -> ConnectionLimits:
    """The lean front's per-connection bounds; a test may parametrize its own."""
    return DEFAULT_CONNECTION_LIMITS


@pytest.fixture(params=["memory", "redis"])
async def service(
    request: pytest.FixtureRequest, keys_dir: Path, config_dir: Path, front: str,
    connection_limits: ConnectionLimits,
) -> AsyncIterator[Service]:
    store_url = "memory" if request.param == "memory" else request.getfixturevalue("redis_url")
    async with serving(Settings(config_dir=config_dir, keys_dir=keys_dir,
                                store_url=store_url), front,
                       connection=connection_limits) as service:
        yield service


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, front: str = "aiohttp", *,
    connection: ConnectionLimits = DEFAULT_CONNECTION_LIMITS,
) -> AsyncIterator[Service]:
    """The app of `settings` served on loopback, its clock fixed at WED_10; with the
    lean front, that on a free port too (`connection`: its per-connection bounds)."""
    clock = FixedClock(WED_10)
    keys_dir = settings.keys_dir
    if front == "lean":
        settings = settings.model_copy(update={"host": "127.0.0.1", "terminal_port": 0,
                                               "shutdown_timeout_s": 5.0})
    app = create_app(settings, clock=clock, connection=connection)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    url = str(server.make_url("")).rstrip("/")
    terminal_url = f"http://127.0.0.1:{app[TERMINAL_FRONT].port}" if front == "lean" else url
    try:
        yield Service(url=url, terminal_url=terminal_url, app=app, clock=clock,
                      keys_dir=keys_dir, session=session, **load_service_keys(keys_dir))
    finally:
        await session.close()
        await server.close()
