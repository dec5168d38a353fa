"""`--terminal-url` / `terminal_url`: `POST /v1/validations` goes to the terminal URL, the
operator API (registry import, blocks, settlement) stays on `--url`.

Two recording servers on loopback stand in for the service's two ports: the "terminal"
one answers every request 401, the "operator" one 200 `{}` to everything.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from terminals_sim.cli import build_parser
from terminals_sim.scenarios import run_scenarios

from .conftest import CONFIG_DIR

REPO = CONFIG_DIR.parent
VALIDATIONS = ("POST", "/v1/validations")


@dataclass
class Recorder:
    url: str = ""
    seen: list[tuple[str, str]] = field(default_factory=list)


async def _serve(status: int, answer: str) -> AsyncIterator[Recorder]:
    recorder = Recorder()

    async def handle(request: web.Request) -> web.Response:
        recorder.seen.append((request.method, request.path))
        await request.read()
        return web.Response(status=status, text=answer, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    recorder.url = f"http://127.0.0.1:{server.port}"
    try:
        yield recorder
    finally:
        await server.close()


@pytest.fixture
async def terminal() -> AsyncIterator[Recorder]:
    async for recorder in _serve(401, '{"error":"unauthorized","detail":"x"}'):
        yield recorder


@pytest.fixture
async def operator() -> AsyncIterator[Recorder]:
    async for recorder in _serve(200, "{}"):
        yield recorder


@pytest.mark.parametrize("command", [
    ["load", "--rate", "1", "--duration", "1"], ["scenarios"], ["demo"]])
def test_the_commands_take_a_terminal_url(command: list[str]) -> None:
    common = ["--url", "http://127.0.0.1:8080", "--keys", "k"]
    assert build_parser().parse_args([*command, *common]).terminal_url is None
    args = build_parser().parse_args([*command, *common, "--terminal-url", "http://127.0.0.1:8081"])
    assert (args.url, args.terminal_url) == ("http://127.0.0.1:8080", "http://127.0.0.1:8081")


async def test_scenarios_send_validations_to_the_terminal_url(
        terminal: Recorder, operator: Recorder, keyset_dir: Path) -> None:
    report = await run_scenarios(operator.url, keyset_dir, CONFIG_DIR, admin_token="t",
                                 only=["terminal_auth"], terminal_url=terminal.url)
    assert report.notes[1].startswith("registry:"), report.text()  # loaded via `operator`
    assert operator.seen and all(path.startswith("/v1/admin/") for _, path in operator.seen)
    assert len(terminal.seen) == len(report.checks) >= 4
    assert set(terminal.seen) == {VALIDATIONS}
    passed = {c.step for c in report.checks if c.status == 401 and not c.mismatch}
    assert {"wrong-secret", "unknown-terminal", "stale-timestamp",
            "future-timestamp"} <= passed, report.text()


async def test_load_command_sends_validations_to_the_terminal_url(
        terminal: Recorder, operator: Recorder, keyset_dir: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "terminals_sim", "load", "--url", operator.url,
        "--terminal-url", terminal.url, "--keys", str(keyset_dir), "--config", str(CONFIG_DIR),
        "--admin-token", "t", "--rate", "20", "--duration", "0.5", "--terminals", "2",
        "--population", "50", "--drain", "5", "--quiet", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 1, err.decode()  # every 401 is a mismatch
    assert "; registry: " in out.decode()  # loaded via `operator`
    assert len(terminal.seen) == 10 and set(terminal.seen) == {VALIDATIONS}
    assert operator.seen and VALIDATIONS not in operator.seen
