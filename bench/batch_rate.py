"""An offline batch upload's cost per record against a live QR scan's, on one core.

    python -m bench.batch_rate [--n 3000] [--batch 500] [--store memory|redis://...]
                               [--front lean|aiohttp]

A validator (`serve`, one process) takes `n` live e-card QR scans (16 in flight, on
`--front`: the lean terminal port by default, the faster of the two), then
`n` offline records of other QR scans in batches of `batch`. Both are measured as the
validator's own CPU seconds (utime + stime from /proc) per validation, so the figure is
a rate per core whatever the load generator costs: rate = 1 / CPU seconds. The issue's
target is a batch rate of at least 80 % of the live one. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import hmac
import json
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.creds import PATH, bus_terminals, ecard_holders, qr_scans, signed, terminal_secrets
from bench.procs import ROOT, Validator, cpu_seconds
from validator.config_folder import load_config
from validator.keygen import init_keyset

BATCH_PATH = "/v1/validations:batch"
CONFIG = ROOT / "config"


def _batch_bodies(credentials: list[tuple[str, Any]], at: int, size: int) -> list[bytes]:
    scanned = dt.datetime.fromtimestamp(at, dt.UTC).isoformat()
    records = [{"record_id": secrets.token_urlsafe(12), "scanned_at": scanned,
                "credential": cred, "terminal_decision": {"decision": "accept", "reason": "ok"}}
               for _, cred in credentials]
    return [json.dumps({"records": records[i:i + size]}, separators=(",", ":")).encode()
            for i in range(0, len(records), size)]


def _headers(terminal: str, secret: bytes, path: str, body: bytes) -> dict[str, str]:
    now = int(time.time())
    digest = hashlib.sha256(body).hexdigest()
    mac = hmac.new(secret, f"POST\n{path}\n{now}\n{digest}".encode(), hashlib.sha256)
    return {"X-Terminal-Id": terminal, "X-Timestamp": str(now), "X-Signature": mac.hexdigest(),
            "Content-Type": "application/json"}


async def _live(url: str, requests: list[Any]) -> int:
    accepted = 0
    queue = list(reversed(requests))

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        while queue:
            req = queue.pop()
            headers = {"X-Terminal-Id": req.terminal, "X-Timestamp": str(req.timestamp),
                       "X-Signature": req.signature, "Content-Type": "application/json"}
            async with session.post(url + PATH, data=req.body, headers=headers) as resp:
                accepted += (await resp.json())["decision"] == "accept"

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(16)))
    return accepted


async def _batches(url: str, terminal: str, secret: bytes, bodies: list[bytes]) -> int:
    applied = 0
    async with aiohttp.ClientSession() as session:
        for body in bodies:
            async with session.post(url + BATCH_PATH, data=body,
                                    headers=_headers(terminal, secret, BATCH_PATH, body)) as resp:
                answer = await resp.json()
                applied += sum(r.get("decision") == "accept" for r in answer["results"])
    return applied


def measure(n: int, batch: int, store: str, front: str) -> dict[str, Any]:
    config = load_config(CONFIG)
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys"
        init_keyset(keys, region=config.city.region, terminal_ids=config.terminals)
        secrets_by_terminal = terminal_secrets(keys)
        terminal = bus_terminals(keys, 1)[0]
        now = int(time.time())
        holders = ecard_holders(keys, 200, now - 3600)  # issued before the offline hour
        validator = Validator(keys=keys, config=CONFIG, store_url=store, workers=1,
                              loop="asyncio", cpus=None, log=Path(tmp) / "serve.log",
                              front=front)
        validator.start()
        try:
            validator.wait_ready()
            # the batch's records were decided offline ten minutes ago, by the same bus
            offline = list(qr_scans(holders, range(n, 2 * n), now - 600, [terminal]))
            bodies = _batch_bodies(offline, now - 600, batch)
            live = list(signed(qr_scans(holders, range(n), int(time.time()), [terminal]),
                               secrets_by_terminal, int(time.time())))
            asyncio.run(_live(validator.terminal_url, live[:200]))  # warm-up: caches, first loads
            live = live[200:]
            before = cpu_seconds(validator.pids())
            live_accepted = asyncio.run(_live(validator.terminal_url, live))
            live_cpu = cpu_seconds(validator.pids()) - before
            before = cpu_seconds(validator.pids())
            batch_accepted = asyncio.run(_batches(validator.url, terminal,
                                                  secrets_by_terminal[terminal], bodies))
            batch_cpu = cpu_seconds(validator.pids()) - before
        finally:
            validator.stop()
    live_rate, batch_rate = len(live) / live_cpu, n / batch_cpu
    return {"store": store.split("://")[0], "front": front, "live_qr": len(live),
            "live_accepted": live_accepted,
            "live_per_core_s": round(live_rate), "offline_records": n,
            "batch_accepted": batch_accepted, "batch_size": batch,
            "batch_per_core_s": round(batch_rate),
            "batch_vs_live": round(batch_rate / live_rate, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--store", default="memory")
    parser.add_argument("--front", choices=("lean", "aiohttp"), default="lean")
    args = parser.parse_args()
    print(json.dumps(measure(args.n, args.batch, args.store, args.front)))


if __name__ == "__main__":
    main()
