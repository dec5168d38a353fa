"""`serve --workers N` as the benchmark starts it: one port (and one terminal-front port),
summed metrics, clean stops."""

from __future__ import annotations

import os
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.procs import Validator, process_tree
from validator.config_folder import load_config
from validator.keygen import init_keyset

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def two_workers(tmp_path: Path, redis_url: str) -> Iterator[Validator]:
    keys = tmp_path / "keys"
    init_keyset(keys, region="369900", terminal_ids=list(load_config(CONFIG).terminals))
    service = Validator(keys=keys, config=CONFIG, store_url=redis_url, workers=2, loop="auto",
                        cpus=None, log=tmp_path / "validator.log")
    service.start()
    try:
        service.wait_ready()
        yield service
    finally:
        service.stop()


def status_of(url: str, data: bytes | None = None) -> int:
    """One request on a fresh connection (urllib does not keep connections alive)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code


def gone(pids: list[int], within_s: float = 5.0) -> bool:
    """Every process exited (multiprocessing's resource tracker follows its parent)."""
    deadline = time.monotonic() + within_s
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; its parent reaps it


def scrape(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as reply:
        return str(reply.read().decode())


def test_workers_share_the_port_and_every_scrape_sums_them(two_workers: Validator) -> None:
    assert len(two_workers.worker_pids()) == 2
    assert two_workers.terminal_url != two_workers.url
    for _ in range(30):  # unsigned: 401, counted by whichever worker the kernel picked
        assert status_of(two_workers.url + "/v1/validations", b"{}") == 401
        assert status_of(two_workers.terminal_url + "/v1/validations", b"{}") == 401
    for _ in range(6):  # whichever worker answers, it reports the sum over both
        text = scrape(two_workers.url)
        assert re.search(r'validator_http_errors_total\{error="unauthorized",status="401"\} 60\.0',
                         text), text
    pids = set(re.findall(r'validator_store_up\{pid="(\d+)"\} 1\.0', scrape(two_workers.url)))
    assert len(pids) == 2  # a gauge stays per worker
    frozen = re.findall(r"gc: start-up heap frozen \((\d+) objects\), young threshold 10000",
                        two_workers.log.read_text())
    assert len(frozen) == 2 and all(int(n) > 10_000 for n in frozen), frozen  # serve.py
    fronts = re.findall(r"terminal front on http://127\.0\.0\.1:(\d+) \(pid (\d+)\)",
                        two_workers.log.read_text())
    assert {port for port, _ in fronts} == {str(two_workers.terminal_port)}
    assert len({pid for _, pid in fronts}) == 2  # SO_REUSEPORT: each worker listens


def test_sigterm_stops_every_worker(two_workers: Validator) -> None:
    assert two_workers.proc is not None
    tree = process_tree(two_workers.proc.pid)
    started = time.monotonic()
    assert two_workers.stop() == 0
    assert time.monotonic() - started < 10
    assert gone(tree)


def test_a_dead_worker_stops_the_service(two_workers: Validator) -> None:
    assert two_workers.proc is not None
    tree = process_tree(two_workers.proc.pid)
    os.kill(two_workers.worker_pids()[0], signal.SIGKILL)
    assert two_workers.proc.wait(timeout=20) == 1  # not limping on with one worker
    assert gone(tree)
