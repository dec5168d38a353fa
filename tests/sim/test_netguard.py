"""Loopback only: the simulator refuses to aim at anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminals_sim.cli import main
from terminals_sim.netguard import NotLoopback, require_loopback


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080", "http://127.0.0.1:8080/", "http://127.1.2.3", "http://localhost:80",
    "http://LOCALHOST:8080", "http://[::1]:8080", "https://127.0.0.1", "http://[::ffff:127.0.0.1]:1",
])
def test_loopback_accepted(url: str) -> None:
    assert require_loopback(url) == url.rstrip("/")


@pytest.mark.parametrize("url", [
    "http://10.0.0.1:8080", "http://192.168.1.10", "http://example.com", "http://[::2]:80",
    "http://0.0.0.0:8080", "http://128.0.0.1", "http://localhost.example.com",
    "http://127.0.0.1.nip.io", "ftp://127.0.0.1", "127.0.0.1:8080", "http://", "http://127.0.0.1:99999",
    "http://user@10.1.1.1", "http://[::ffff:10.0.0.1]:1",
])
def test_others_refused(url: str) -> None:
    with pytest.raises(NotLoopback):
        require_loopback(url)


def test_cli_refuses_before_any_traffic(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["load", "--url", "http://203.0.113.5:8080", "--keys", str(tmp_path),
                 "--rate", "10", "--duration", "1"])
    assert code == 2
    assert "not a loopback address" in capsys.readouterr().err
