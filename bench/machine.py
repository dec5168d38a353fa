"""What the benchmark ran on: cores, CPU model, versions, and how busy the machine was."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _redis_version() -> str:
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                             timeout=5, check=False).stdout
    except OSError:
        return "not installed"
    return next((part.split("=", 1)[1] for part in out.split() if part.startswith("v=")), out)


def describe() -> dict[str, Any]:
    from cryptography.hazmat.backends.openssl.backend import backend

    return {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": os.path.realpath(sys.executable),  # pyenv's or the distro's
        "openssl": backend.openssl_version_text(),
        "cryptography": _version("cryptography"),
        "aiohttp": _version("aiohttp"),
        "uvloop": _version("uvloop"),
        "hiredis": _version("hiredis"),
        "redis_server": _redis_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def render(info: dict[str, Any]) -> str:
    load = " ".join(f"{x:.2f}" for x in info["load_average"])
    return (f"machine: {info['nproc']} cores, {info['cpu_model']}, Linux {info['kernel']}\n"
            f"software: Python {info['python']} ({info.get('python_executable', '?')}), "
            f"{info['openssl']}, cryptography "
            f"{info['cryptography']}, aiohttp {info['aiohttp']}, uvloop {info['uvloop']}, "
            f"hiredis {info['hiredis']}, redis-server {info['redis_server']}\n"
            f"load average (1, 5, 15 min) at {info['at']}: {load}")
