"""Running `python -m validator` as deployments do: real subprocesses, free loopback ports."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.web.harness import CONFIG_DIR, ROOT

START_TIMEOUT_S = 30.0


def run_cli(*args: str, check: bool = True, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "validator", *args], cwd=cwd, text=True,
                          capture_output=True, check=check, timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def listening(*, reuse_port: bool = False) -> Iterator[int]:
    """Something listening on a free loopback port, as another service would."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:  # as `serve --workers N` binds: a second such server could join it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def key_set(directory: Path) -> str:
    """`keys init` into `directory`; answers the admin token it printed."""
    out = run_cli("keys", "init", str(directory), "--config", str(CONFIG_DIR)).stdout
    [admin] = [line.split(": ", 1)[1] for line in out.splitlines()
               if line.startswith("  admin: ")]
    return admin


@dataclass
class Served:
    """A running `serve` process and what its output said so far."""

    proc: subprocess.Popen[str]
    url: str
    admin_token: str
    log: list[str]

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        """One operator API call with the admin token: (status, parsed JSON or None)."""
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={"Authorization": f"Bearer {self.admin_token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                status, text = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, text = exc.code, exc.read()
        return status, json.loads(text) if text else None


@contextlib.contextmanager
def serving(keys: Path, admin_token: str, store: str, *extra: str) -> Iterator[Served]:
    """`python -m validator serve` until it answers /healthz; stopped afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "validator", "serve", "--config", str(CONFIG_DIR),
         "--keys", str(keys), "--store", store, "--port", str(port), *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    served = Served(proc, f"http://127.0.0.1:{port}", admin_token, [])
    try:
        _wait_until_up(served, port)
        yield served
    finally:
        proc.terminate()
        _, rest = proc.communicate(timeout=20)
        served.log.extend(rest.splitlines())


def _wait_until_up(served: Served, port: int) -> None:
    assert served.proc.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        line = served.proc.stderr.readline()  # start-up logs, until "Running on"
        if line:
            served.log.append(line.rstrip("\n"))
        if "Running on" in line:
            return
        if (not line and served.proc.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError("serve did not start:\n" + "\n".join(served.log))


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stderr.splitlines()
