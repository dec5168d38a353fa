"""One validation at a time against a running service: p50/p99 of the round trip.

    python bench/latency.py --url http://127.0.0.1:8080 --keys keys/dev [--n 2000] [--kind card|qr]

Sequential (closed loop, one request in flight), so the figures are the latency of a
single validation, queueing excluded. Card taps and QRs are built before the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import time
from pathlib import Path

import aiohttp

from terminals_sim.card import Card, card_id_for, make_ssn
from terminals_sim.ecard import Phone, generate_key, load_issuers
from terminals_sim.terminal import TerminalClient

TERMINAL = "T-BUS-K1-001"


def credentials(keys: Path, n: int, kind: str) -> list[dict[str, object]]:
    masters = {(k["region"], k["kv"]): bytes.fromhex(k["key"])
               for k in json.loads((keys / "card-master-keys.json").read_text())["keys"]}
    now = int(time.time())
    out: list[dict[str, object]] = []
    if kind == "card":
        for i in range(n):
            ssn = make_ssn("369900", dt.date(1950 + i % 50, 1 + i % 12, 1 + i % 28), i % 1000)
            card = Card(region="369900", ssn=ssn, card_no=f"C{i:08d}",
                        card_id=card_id_for("369900", 10_000_000 + i), issued="20240101",
                        expires="20341231", kv=1, master_key=masters[("369900", 1)])
            out.append(dict(card.tap(TERMINAL, now, "0A1B2C3D")))
        return out
    issuer = load_issuers(keys)[0]
    for i in range(n):
        device = generate_key(issuer.alg)
        level1 = issuer.issue(i.to_bytes(16, "big"), 19600101, f"Q{i:08d}", "369900",
                              device.public_key(), iat=now - 60, exp=now + 86400)
        out.append({"type": "essc_qr", "qr": Phone(level1, device, issuer.alg).qr(now)})
    return out


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--keys", type=Path, default=Path("keys/dev"))
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--kind", choices=["card", "qr"], default="card")
    args = p.parse_args()
    secret = bytes.fromhex(json.loads((args.keys / "terminal-secrets.json").read_text())[TERMINAL])
    creds = credentials(args.keys, args.n, args.kind)
    latencies = []
    async with aiohttp.ClientSession() as session:
        client = TerminalClient(session, args.url, TERMINAL, secret)
        scanned = dt.datetime.now(dt.UTC).isoformat()
        bodies = [client.body(c, scanned) for c in creds]
        for body in bodies[:50]:  # warm-up: connections, caches
            await client.post(body)
        reasons: dict[str, int] = {}
        for body in bodies[50:]:
            t = time.perf_counter()
            reply = await client.post(body)
            latencies.append(time.perf_counter() - t)
            reasons[reply.body.get("reason", str(reply.status))] = \
                reasons.get(reply.body.get("reason", str(reply.status)), 0) + 1
    q = statistics.quantiles(latencies, n=100)
    print(f"{args.kind}: n={len(latencies)} p50={q[49] * 1000:.2f} ms "
          f"p99={q[98] * 1000:.2f} ms max={max(latencies) * 1000:.2f} ms reasons={reasons}")


if __name__ == "__main__":
    asyncio.run(main())
