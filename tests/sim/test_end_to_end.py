"""The simulator against the real service, started as its own process on loopback.

The service is run exactly as an integrator would (`python -m validator keys init`,
`python -m validator serve --store memory --terminal-port N`), from a copy of `config/`
in which the smallest spot (S12) holds only 30 visitors, so the capacity scenario is
quick. Some runs send their validations to the main port (aiohttp), others to the lean
terminal front.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from terminals_sim.checks import Stage
from terminals_sim.demo import DemoOptions, run_demo
from terminals_sim.load_command import LoadOptions, run_load
from terminals_sim.scenarios import run_scenarios

from .conftest import CONFIG_DIR

REPO = CONFIG_DIR.parent
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Service:
    url: str
    terminal_url: str  # the lean terminal front (serve --terminal-port)
    keys_dir: Path
    config_dir: Path
    admin_token: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the service did not become healthy")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("e2e")
    config = root / "config"
    shutil.copytree(CONFIG_DIR, config)
    city = config / "city.toml"
    city.write_text(city.read_text("utf-8").replace("capacity_per_day = 2000",
                                                    "capacity_per_day = 30"), "utf-8")
    keys = root / "keys"
    init = subprocess.run([sys.executable, "-m", "validator", "keys", "init", str(keys),
                           "--config", str(config)], cwd=REPO, capture_output=True, text=True,
                          check=True)
    token = next(line.split(":", 1)[1].strip() for line in init.stdout.splitlines()
                 if line.strip().startswith("admin:"))
    port, terminal_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "validator", "serve", "--config", str(config), "--keys",
         str(keys), "--store", "memory", "--host", "127.0.0.1", "--port", str(port),
         "--terminal-port", str(terminal_port)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, process)
        yield Service(url, f"http://127.0.0.1:{terminal_port}", keys, config, token)
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_scenarios_without_registry(service: Service) -> None:
    report = await run_scenarios(service.url, service.keys_dir, service.config_dir)
    assert report.ok, report.text()
    assert set(report.skipped) == {"categories", "companions", "blocked"}
    assert len(report.checks) > 150


async def test_sm2_faults_get_their_reasons_from_the_service(service: Service) -> None:
    """`keys init` writes an SM2 issuer, so the SM2 codes (protocol §2.1) are all sent:
    forged, tampered, off-curve, without Z_A, with the empty ID, r = 0, s = n."""
    report = await run_scenarios(service.url, service.keys_dir, service.config_dir,
                                 only=["sm2_faults"])
    assert report.ok, report.text()
    steps = {c.step: c for c in report.checks}
    expected = {
        "all-sm2": "accept", "sm2-issuer-es256-device": "accept",
        "es256-issuer-sm2-device": "accept",
        "forged-sm2-issuer": "bad_signature", "forged-sm2-device": "bad_signature",
        "tampered-sm2-level1": "bad_signature", "tampered-sm2-level2": "bad_signature",
        "sm2-issuer-without-za": "bad_signature", "sm2-device-without-za": "bad_signature",
        "sm2-issuer-empty-id": "bad_signature", "sm2-device-empty-id": "bad_signature",
        "sm2-r-zero": "bad_signature", "sm2-s-n": "bad_signature",
        "sm2-device-off-curve": "malformed_credential",
        "sm2-device-off-curve-forged-issuer": "malformed_credential",
        "sm2-without-za-and-expired": "bad_signature",
    }
    for step, answer in expected.items():
        body = steps[step].response
        assert answer in (body.get("decision"), body.get("reason")), (step, body)


async def test_scenarios_with_operator_api(service: Service) -> None:
    report = await run_scenarios(service.url, service.keys_dir, service.config_dir,
                                 admin_token=service.admin_token,
                                 terminal_url=service.terminal_url)
    if "404" in report.errors.get("registry", ""):
        pytest.skip("the operator API (protocol §5) is not served yet")
    assert report.ok, report.text()
    assert not report.skipped


async def test_load_run_writes_its_report(service: Service, tmp_path: Path) -> None:
    doc = await run_load(LoadOptions(
        url=service.url, terminal_url=service.terminal_url, keys_dir=service.keys_dir,
        config_dir=service.config_dir, rate=150,
        duration_s=2, terminals=40, scenario="mixed", out_dir=tmp_path, population=300,
        fault_share=0.05, progress=False, sm2_share=0.3))
    assert doc["mismatches"] == 0, doc["mismatch_samples"]
    assert doc["errors"] == {}
    assert doc["scheduled"] == doc["answered"] == 300
    assert doc["passed"], doc["verdict"]
    assert (tmp_path / "report.json").is_file() and (tmp_path / "report.html").is_file()


async def test_a_wrong_expectation_fails_the_run(service: Service, tmp_path: Path) -> None:
    """The checks are not vacuous: a simulator that believes K1 costs 250 fen fails."""
    wrong = tmp_path / "config"
    shutil.copytree(service.config_dir, wrong)
    city = wrong / "city.toml"
    text = city.read_text("utf-8")
    k1 = text.index('id = "K1"')
    city.write_text(text[:k1] + text[k1:].replace("standard_fen = 200", "standard_fen = 250", 1),
                    "utf-8")
    report = await run_scenarios(service.url, service.keys_dir, wrong, only=["daily_cap"])
    assert not report.ok
    assert all("standard_fen 200 != 250" in str(c.mismatch) for c in report.mismatches)
    assert "MISMATCH daily_cap/ride-" in report.text()


async def test_taps_are_sent_for_the_second_they_were_made(
        service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """A card's cryptogram covers `scanned_at` to the second, so a tap must be sent with
    the time it was made for, even when the clock ticks over between the two (as it did
    once in CI). Here every reading of the clock is 0.6 s later than the last."""
    readings = itertools.count()
    start = time.time()
    monkeypatch.setattr(Stage, "now", staticmethod(lambda: start + 0.6 * next(readings)))
    report = await run_scenarios(service.url, service.keys_dir, service.config_dir,
                                 admin_token=service.admin_token,
                                 only=["card_faults", "blocked", "companions", "daily_cap"])
    assert report.ok, report.text()
    assert next(readings) > 40  # the clock did tick over, many times


async def test_the_demo_stream_is_mostly_accepted(service: Service) -> None:
    """A few seconds of `make run`'s stream with the registry loaded: every answer as
    expected, and refusals the exception (faults, suspended holders, a spot closed)."""
    result = await run_demo(DemoOptions(
        url=service.url, terminal_url=service.terminal_url, keys_dir=service.keys_dir,
        config_dir=service.config_dir, rate=40, every_s=1, seed=21,
        admin_token=service.admin_token, duration_s=4))
    assert result.mismatches == 0
    total = sum(result.labels.values())
    assert total > 80
    assert all(label.startswith(("accept/", "deny/")) for label in result.labels), result.labels
    assert result.deny_share < 0.15, result.labels
    assert result.labels["deny/already_entered_today"] <= 0.05 * total, result.labels
