"""Serving the app: in this process, or as N worker processes sharing one port.

`serve(settings, workers=N)`. A single worker runs in this process. Several
are spawned (fresh interpreters, so nothing is shared but the port and the store); each
builds its own app, opens its own store connection and binds host:port with
SO_REUSEPORT, so the kernel spreads incoming connections over them. A validation is
CPU-bound Python, so this is how one host uses more than one core.

The parent only supervises. SIGINT and SIGTERM are passed on, and each worker shuts down
as a single process does (requests in flight finish, `cleanup_ctx` closes the store). If
a worker dies on its own, the others are stopped and `serve` returns 1: a supervisor
(systemd, Kubernetes) should restart the service rather than have it limp on with fewer
workers than configured.

Metrics with several workers: prometheus_client's multiprocess mode. The parent points
`PROMETHEUS_MULTIPROC_DIR` at a fresh directory (the caller's, if set, emptied first)
before spawning, every worker's metrics then live in files there, and each worker's
`/metrics` answers the sum over all workers: counters and histograms are exact whichever
worker is scraped. Gauges (store up, terminal last seen, capacity use) are per worker
and carry a `pid` label — a limitation of that mode for gauges declared without a
`multiprocess_mode`. The decision-latency window of the dashboard stays per worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Literal
from urllib.parse import urlsplit

from validator import ports
from validator.config_folder import load_config
from validator.keyset import load_keyset
from validator.settings import Settings
from validator.state import StoreUrlError, open_store
from validator.state.store import StoreUnavailable

__all__ = ["EventLoop", "serve"]

log = logging.getLogger("validator")

EventLoop = Literal["auto", "asyncio", "uvloop"]
STOP_GRACE_S = 5.0  # after a worker's shutdown timeout, one that has not exited is killed
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def serve(settings: Settings, *, workers: int = 1, loop: EventLoop = "auto") -> int:
    """Serve until SIGINT/SIGTERM; the exit status (0, or 1 if a worker died).

    What a person can get wrong is refused before anything starts, by `ConfigError`,
    `KeySetError`, `StoreUrlError` or `ports.PortUnavailable`, each one line naming
    what to fix. An unreachable store is only warned about: the service starts, answers
    503 (and /readyz not ready) until the store is back, and then recovers by itself.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if workers > 1 and settings.store_url == "memory":
        raise ValueError("the memory store lives in one process: several workers need Redis")
    _preflight(settings)
    if workers == 1:
        _serve_here(settings, loop)
        return 0
    if settings.port == 0:  # every worker must bind the same port: choose it here
        settings = settings.model_copy(update={"port": _free_port(settings.host)})
    if settings.terminal_port == 0:
        settings = settings.model_copy(update={"terminal_port": _free_port(settings.host)})
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    own_dir = not given
    metrics_dir = Path(given or tempfile.mkdtemp(prefix="validator-metrics-"))
    for stale in metrics_dir.glob("*.db"):  # a previous run's workers: not ours to sum
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # read by workers at import
    try:
        return _supervise(settings, workers, loop, metrics_dir)
    finally:
        if own_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _preflight(settings: Settings) -> None:
    """Check what start-up would trip on, in this process, before any worker exists."""
    load_config(settings.config_dir)  # a worker loads them again; a mistake is told here
    load_keyset(settings.keys_dir)
    ports.check(settings.host, _ports(settings))
    problem = asyncio.run(_store_problem(settings.store_url))
    if problem is not None:
        log.warning("store %s unreachable (%s): serving anyway, answering 503 until it "
                    "is back", _shown(settings.store_url), problem)


def _ports(settings: Settings) -> dict[str, int | None]:
    return {"--port": settings.port, "--terminal-port": settings.terminal_port}


async def _store_problem(url: str) -> str | None:
    """Why the store at `url` does not answer now; None if it does."""
    try:
        store = await open_store(url)
    except StoreUrlError:
        raise
    except ValueError as exc:  # a URL redis-py cannot take apart, e.g. a port of letters
        raise StoreUrlError(f"--store {_shown(url)}: {exc}") from None
    try:
        await store.ping()
    except StoreUnavailable as exc:
        return str(exc)
    finally:
        await store.close()
    return None


def _shown(url: str) -> str:
    """`url` without its password, to be logged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _serve_here(settings: Settings, loop: EventLoop) -> None:
    try:
        run_worker(settings, loop=loop, reuse_port=False, metrics_dir=None)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        # Taken since `_preflight` looked: name the port all the same.
        ports.check(settings.host, _ports(settings))
        raise ports.PortUnavailable(f"--port {settings.port}: address already in use") from None


def run_worker(
    settings: Settings, *, loop: EventLoop, reuse_port: bool, metrics_dir: Path | None
) -> None:
    """Build the app and serve it in this process until SIGINT/SIGTERM."""
    from aiohttp import web

    from validator.web.app import create_app

    app = create_app(settings, reuse_port=reuse_port, metrics_dir=metrics_dir,
                     freeze_heap=True)
    web.run_app(
        app, host=settings.host, port=settings.port, reuse_port=reuse_port or None,
        loop=_new_loop(loop), shutdown_timeout=settings.shutdown_timeout_s,
        access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
        print=lambda msg: log.info("%s (pid %d)", " ".join(msg.split()), os.getpid()),
    )


def _new_loop(kind: EventLoop) -> asyncio.AbstractEventLoop:
    """uvloop when asked for, or with "auto" when it is installed; else asyncio's own."""
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _worker_main(settings: Settings, loop: EventLoop, metrics_dir: str) -> None:
    """A spawned worker's entry point (a fresh interpreter: set up logging again)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    run_worker(settings, loop=loop, reuse_port=True, metrics_dir=Path(metrics_dir))


def _supervise(settings: Settings, workers: int, loop: EventLoop, metrics_dir: Path) -> int:
    context = multiprocessing.get_context("spawn")  # no forked event loop or sockets
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs: list[BaseProcess] = []
    try:
        for index in range(workers):
            proc = context.Process(target=_worker_main, name=f"validator-worker-{index}",
                                   args=(settings, loop, str(metrics_dir)))
            proc.start()
            procs.append(proc)
        log.info("%d workers on http://%s:%d%s (pids %s)", workers, settings.host,
                 settings.port, "" if settings.terminal_port is None else
                 f", terminal front on port {settings.terminal_port}",
                 ", ".join(str(p.pid) for p in procs))
        while not stopping and all(p.is_alive() for p in procs):
            time.sleep(0.2)
        died = [p for p in procs if not p.is_alive()] if not stopping else []
        for dead in died:
            log.error("worker %s (pid %s) exited with %s: stopping the others",
                      dead.name, dead.pid, dead.exitcode)
        return 1 if died else 0
    finally:
        _stop_all(procs, metrics_dir, settings.shutdown_timeout_s + STOP_GRACE_S)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_all(procs: list[BaseProcess], metrics_dir: Path, grace_s: float) -> None:
    """SIGTERM every worker, wait for a graceful exit, kill what is left."""
    from prometheus_client import multiprocess

    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        proc.join(max(deadline - time.monotonic(), 0.1))
        if proc.is_alive():
            log.warning("worker pid %s did not stop in time: killing it", proc.pid)
            proc.kill()
            proc.join()
        if proc.pid is not None:
            multiprocess.mark_process_dead(proc.pid, str(metrics_dir))  # type: ignore[no-untyped-call]


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port
