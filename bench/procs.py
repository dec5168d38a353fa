"""Processes the benchmark runs: redis-server, the validator, and their CPU time.

Both are pinned with `taskset` when it exists (the validator to its own core(s), Redis
and the load generator to the others), so the validator's CPU per validation is not
disturbed by the generator. CPU time is read from /proc/<pid>/stat (utime + stime) of
the validator and all its worker processes; the time the hypervisor took from the
validator's cores ("steal") from /proc/stat.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PYTHON = sys.executable
ROOT = Path(__file__).resolve().parents[1]
# The validator's HTTP fronts for terminal requests (validator/web/terminal/front.py).
FRONTS = ("lean", "aiohttp")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def pinned(cpus: str | None, argv: Sequence[str]) -> list[str]:
    """`argv` under `taskset -c cpus`, if both are there; else `argv` as is."""
    if cpus and shutil.which("taskset"):
        return ["taskset", "-c", cpus, *argv]
    return list(argv)


def cpu_list(spec: str) -> set[int]:
    """The CPUs a taskset-style list names: "1", "0-3", "0,2-3"."""
    cpus: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def steal_seconds(cpus: Collection[int]) -> float:
    """Time the hypervisor ran something else while these virtual CPUs wanted to run.

    /proc/stat's eighth figure per CPU (0 on bare metal; no /proc/stat: 0). On a shared
    VM it tells a slow step caused by the host from one caused by the service.
    """
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return 0.0
    total = 0
    for line in lines:
        name, *figures = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus \
                and len(figures) >= 8:
            total += int(figures[7])
    return total / CLOCK_TICKS


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of these processes so far, in seconds (vanished ones count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat
    return total / CLOCK_TICKS


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (the validator's spawned workers)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(child) for child in children)
    return tree


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class Service:
    """A child process started with `start()` and stopped (SIGTERM, then kill) by `stop()`."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.argv, self.log = argv, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=ROOT)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace_s: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# docs/operations.md: no automatic AOF rewrite during a day's traffic (its fork stops
# Redis for 12-31 ms here); a benchmark run writes well under this.
AOF_REWRITE_MIN_SIZE = "8gb"


class RedisServer(Service):
    """redis-server on a free loopback port: AOF on with `appendfsync everysec` (or
    `always`: no answered decision lost on power loss) and automatic rewrites past
    AOF_REWRITE_MIN_SIZE only, as in production (docs/operations.md), no RDB snapshots."""

    def __init__(self, workdir: Path, cpus: str | None, *, fsync: str = "everysec") -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server") or "redis-server"
        super().__init__(pinned(cpus, [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", fsync,
            "--auto-aof-rewrite-min-size", AOF_REWRITE_MIN_SIZE, "--dir", str(workdir),
        ]), workdir / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cpu_seconds(self) -> float | None:
        """Redis's CPU time so far (its main thread and I/O; a rewrite's child is a
        process of its own and not counted). None before it started."""
        return cpu_seconds([self.proc.pid]) if self.proc is not None else None

    def forks(self) -> int | None:
        """Redis's `total_forks` so far: each is an AOF rewrite (no RDB snapshots here),
        a child copying the data set on the load's core. None if Redis does not answer."""
        client = redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2,
                             retry=Retry(NoBackoff(), 0))  # a Redis that is gone: at once
        try:
            return int(client.info("stats")["total_forks"])
        except (redis.RedisError, OSError, KeyError):
            return None
        finally:
            client.close()

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on {self.port}; see {self.log}")


class StoreServer(Protocol):
    """What a step reads of the store's servers: one Redis (`RedisServer`) or a cluster
    (`bench/redis_cluster.py`, `ClusterService`)."""

    @property
    def url(self) -> str: ...

    def cpu_seconds(self) -> float | None: ...

    def forks(self) -> int | None: ...


class Validator(Service):
    """`python -m validator serve --workers N` on a free port, against `store_url`.

    `front="lean"` adds `--terminal-port` on a second free port, and `terminal_url` is
    that port, where the generators send their validations; with `front="aiohttp"` it is
    the main port, as before the lean front existed."""

    def __init__(self, *, keys: Path, config: Path, store_url: str, workers: int, loop: str,
                 cpus: str | None, log: Path, front: str = "lean") -> None:
        if front not in FRONTS:
            raise ValueError(f"front must be one of {FRONTS}, not {front!r}")
        self.port = free_port()
        self.terminal_port = free_port() if front == "lean" else self.port
        super().__init__(pinned(cpus, [
            PYTHON, "-m", "validator", "serve", "--config", str(config), "--keys", str(keys),
            "--store", store_url, "--port", str(self.port), "--workers", str(workers),
            "--loop", loop,
            *(["--terminal-port", str(self.terminal_port)] if front == "lean" else []),
        ]), log)
        self.workers = workers
        self.front = front

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def terminal_url(self) -> str:
        """Where terminal requests go: the lean front's port, or aiohttp's."""
        return f"http://127.0.0.1:{self.terminal_port}"

    def pids(self) -> list[int]:
        """The serving processes: the parent, its workers (and multiprocessing's helper)."""
        return process_tree(self.proc.pid) if self.proc is not None else []

    def worker_pids(self) -> list[int]:
        """The spawned workers alone (with --workers 1 the parent serves: none)."""
        return [pid for pid in self.pids()[1:] if b"spawn_main" in _cmdline(pid)]

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until /readyz answers 200 and every worker process is up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"the validator exited; see {self.log}")
            workers_up = self.workers == 1 or len(self.worker_pids()) == self.workers
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as reply:
                    if reply.status == 200 and workers_up:
                        time.sleep(0.5 if self.workers > 1 else 0)  # the last one binds
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the validator did not become ready; see {self.log}")
