"""Fixtures shared by every test package: a real Redis, and the two state stores.

- `redis_server` (session): a `RedisServer` — a real `redis-server` started on a free
  loopback port for the whole session, without persistence. `stop()` kills it and
  `start()` brings it back on the same port (empty, scripts forgotten), so a test can
  stage an outage; `pause()` / `resume()` freeze it (SIGSTOP) to stage a hung server;
  `command(...)` sends one raw command. The next `redis_url` undoes what a test left.
  A missing `redis-server` binary is an error, not a skip: a green run must have run
  the Redis tests.
- `redis_url` (function): the server's URL, after FLUSHALL — every test starts empty.
- `store` (function, parametrized "memory" / "redis" / "cluster"): a fresh `Store`,
  closed after the test. A test that takes it runs once per implementation, which is
  how one contract suite covers all three. The memory variant starts no Redis.
- `fixed_clock`: a `FixedClock` at a fixed instant, for code that takes a `Clock`.
- `redis_cluster` (session): a real Redis Cluster, 3 primaries + 3 replicas on free
  loopback ports (bench/redis_cluster.py); `cluster_url` (function): its
  `rediscluster://` URL after FLUSHALL on every primary (a failed-over cluster is first
  waited on until `cluster_state:ok`).

No mocks: tests talk to a real server over loopback.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from bench.redis_cluster import RedisClusterNodes
from validator.clock import FixedClock
from validator.state.memory import MemoryStore
from validator.state.redis import RedisStore
from validator.state.rediscluster import RedisClusterStore
from validator.state.store import Store

REDIS_START_TIMEOUT_S = 10.0
FIXED_NOW = 1_795_000_000.0  # 2026-11-18 (UTC), an arbitrary instant for FixedClock


class RedisServer:
    """A `redis-server` child process on 127.0.0.1:`port`, persistence off."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start (again) on the same port and wait until it answers PING."""
        if self.running:
            return
        log = self.workdir / "redis.log"
        self._process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
                "--logfile", str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while not self.ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server did not come up on {self.port}:\n{tail}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the server (SIGKILL: an outage, not a shutdown) and wait for it."""
        if self._process is None:
            return
        self._process.kill()
        self._process.wait(timeout=10)
        self._process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections open, but nothing answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Frozen for the block, resumed whatever the block raised."""
        self.pause()
        try:
            yield
        finally:
            self.resume()

    def ping(self) -> bool:
        """True if the server answers PING (a raw socket: no client library involved)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """Send one command (RESP) and return the raw reply, for test set-up only."""
        payload = f"*{len(args)}\r\n".encode()
        for arg in args:
            data = arg.encode()
            payload += b"$%d\r\n%s\r\n" % (len(data), data)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            conn.sendall(payload)
            return conn.recv(65536)


def _free_port() -> int:
    # Port 0 asks the kernel for a free port; redis-server then binds it right away.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


_Server = TypeVar("_Server", RedisServer, RedisClusterNodes)


def _started(make: Callable[[], _Server], failures: tuple[type[Exception], ...]) -> _Server:
    """A server started on free ports; three tries, since a port probed free may be
    taken by someone else before the server binds it."""
    for attempt in range(3):
        server = make()
        try:
            server.start()
        except failures:
            server.stop()
            if attempt == 2:
                raise
        else:
            return server
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed; the state tests need a real Redis "
            "(Debian/Ubuntu: apt-get install redis-server, or `make redis-server`)",
            pytrace=False,
        )
    workdir = tmp_path_factory.mktemp("redis")
    server = _started(lambda: RedisServer(binary, workdir), (RuntimeError,))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an empty Redis (FLUSHALL before the test; revived if a test left it down)."""
    redis_server.resume()
    redis_server.start()
    reply = redis_server.command("FLUSHALL")
    assert reply.startswith(b"+OK"), reply
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if binary is None or cli is None:
        pytest.fail("redis-server and redis-cli are not installed; the cluster tests need "
                    "them (Debian/Ubuntu: apt-get install redis-server)", pytrace=False)
    nodes = _started(lambda: RedisClusterNodes(binary, cli, tmp_path_factory.mktemp("cluster")),
                     (RuntimeError, subprocess.CalledProcessError))
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def cluster_url(redis_cluster: RedisClusterNodes) -> str:
    """The cluster's URL, every primary flushed (after any failover a test staged)."""
    redis_cluster.wait_ok()
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture
def fixed_clock() -> FixedClock:
    return FixedClock(FIXED_NOW)


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A fresh, empty store of each kind; closed after the test."""
    fresh: Store
    if request.param == "memory":
        fresh = MemoryStore()
    elif request.param == "redis":
        fresh = RedisStore.from_url(request.getfixturevalue("redis_url"))
    else:
        fresh = RedisClusterStore.from_url(request.getfixturevalue("cluster_url"))
    try:
        yield fresh
    finally:
        await fresh.close()
