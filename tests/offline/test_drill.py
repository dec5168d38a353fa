"""`python -m terminals_sim offline-drill` against a real service on loopback.

The drill runs as its own process, as an operator runs it; the service runs in the
test's event loop with its clock set to the wall clock (the drill signs with it).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from tests.admin.client import ADMIN_TOKEN
from tests.web.conftest import serving
from tests.web.harness import CONFIG_DIR, ROOT
from validator.settings import Settings


async def _drill(config_dir: Path, keys_dir: Path, tmp_path: Path,
                 *extra: str) -> tuple[int, list[str], str]:
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN_TOKEN + "\n")
    async with serving(Settings(config_dir=config_dir, keys_dir=keys_dir)) as service:
        service.clock.set(time.time())
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "terminals_sim", "offline-drill", "--url", service.url,
            "--keys", str(keys_dir), "--admin-token-file", str(token_file), *extra,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode().splitlines(), err.decode()


def _final(lines: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(lines[-1])
    return result


async def test_the_drill_passes_on_a_fresh_service(keys_dir: Path, tmp_path: Path) -> None:
    code, lines, err = await _drill(CONFIG_DIR, keys_dir, tmp_path, "--terminals", "3",
                                    "--minutes", "5")
    assert code == 0, (lines, err)
    assert any(line.startswith("offline-drill: 3 readers offline for 5 min") for line in lines)
    result = _final(lines)
    # 3 readers × 10 passengers, the four scenes' 8 records; each uploaded twice
    decided = 3 * 10 + 8
    assert result == {"sent": 2 * decided, "mismatches": 0, "double_use_detected": 2,
                      "settled": decided - 2 - 2, "first_mismatches": []}


async def test_the_drill_fails_against_a_service_with_another_policy(
        keys_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    policy = (config / "policy.toml").read_text("utf-8")
    standard = 'id = "bus.standard"\noffer = "full"'
    assert standard in policy
    (config / "policy.toml").write_text(
        policy.replace(standard, 'id = "bus.standard"\noffer = "half"'), "utf-8")
    code, lines, _ = await _drill(config, keys_dir, tmp_path, "--terminals", "2",
                                  "--minutes", "1")
    assert code == 1
    result = _final(lines)
    assert result["mismatches"] > 0
    assert any("expected ('accept', 'ok', 200)" in m for m in result["first_mismatches"])


async def test_the_drill_without_a_token_is_a_usage_error(keys_dir: Path,
                                                          tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "terminals_sim", "offline-drill", "--url",
        "http://127.0.0.1:9", "--keys", str(keys_dir), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"needs --admin-token" in err
