"""`python -m terminals_sim load` fails loudly: bad options before any set-up, a dead
service with a non-zero exit and a line that says so."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminals_sim.cli import main

from .conftest import CONFIG_DIR


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback port that listens but never answers: it shows whether anyone connected."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def _load(url: str, keys: Path, *extra: str) -> list[str]:
    return ["load", "--url", url, "--keys", str(keys), "--config", str(CONFIG_DIR),
            "--rate", "20", "--duration", "1", "--drain", "1", "--timeout", "0.5",
            "--population", "50", "--quiet", *extra]


@pytest.mark.parametrize(("options", "message"), [
    (["--rate", "0"], "--rate must be a positive number, got 0"),
    (["--rate", "-5"], "--rate must be a positive number, got -5"),
    (["--duration", "0"], "--duration must be a positive number, got 0"),
    (["--duration", "nan"], "--duration must be a positive number, got nan"),
    (["--terminals", "0"], "--terminals must be at least 1, got 0"),
    (["--connections", "-1"], "--connections must be at least 1, got -1"),
    (["--population", "0"], "--population must be at least 1, got 0"),
    (["--drain", "-1"], "--drain must be 0 or more seconds, got -1"),
    (["--faults", "1.5"], "--faults is a share from 0 to below 1, got 1.5"),
    (["--p99-budget-ms", "0"], "--p99-budget-ms must be a positive number, got 0"),
    (["--rate", "0.5", "--duration", "1"], "must make at least one request"),
    (["--sm2-share", "1.5"], "--sm2-share is a share from 0 to 1, got 1.5"),
    # protocol §2.1: SM2 e-cards need an SM2 issuer, which this key set does not have
    (["--sm2-share", "0.2"], "an SM2 share needs an SM2 issuer key in the key set"),
])
def test_bad_options_are_refused_before_anything_is_sent(
        listener: socket.socket, keyset_dir: Path, capsys: pytest.CaptureFixture[str],
        options: list[str], message: str) -> None:
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    assert main(_load(url, keyset_dir, *options)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected


@pytest.mark.parametrize("url", ["http://10.0.0.1:8080", "http://example.com", "ftp://127.0.0.1"])
def test_a_target_off_this_machine_is_refused(
        keyset_dir: Path, capsys: pytest.CaptureFixture[str], url: str) -> None:
    assert main(_load(url, keyset_dir)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err


def test_nobody_listening_fails_the_run_and_says_so(
        keyset_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port just free: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(_load(f"http://127.0.0.1:{port}", keyset_dir)) == 1
    out, err = capsys.readouterr()
    verdict = "FAIL: no request was answered (connect_error 20); is the service up?"
    assert err.strip() == verdict
    assert "latency of answers (ms, from the scheduled time): p50 0.00" in out
