"""One validation at a time against a running service: p50/p99 of the round trip.

    python -m bench.latency --url http://127.0.0.1:8080 --keys keys/dev [--n 2000] [--kind card|qr]

Sequential (closed loop, one request in flight), so the figures are the latency of a
single validation, queueing excluded. Card taps and QRs are built before the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import time
from collections import Counter
from pathlib import Path

import aiohttp

from bench import creds
from terminals_sim.terminal import TerminalClient


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--keys", type=Path, default=Path("keys/dev"))
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--kind", choices=["card", "qr"], default="card")
    args = p.parse_args()
    now = int(time.time())
    made = creds.card_taps(args.keys, args.n, now) if args.kind == "card" else \
        creds.qr_codes(args.keys, args.n, now)
    latencies = []
    reasons: Counter[str] = Counter()
    async with aiohttp.ClientSession() as session:
        client = TerminalClient(session, args.url, creds.TERMINAL,
                                creds.terminal_secret(args.keys))
        scanned = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()
        bodies = [client.body(c, scanned) for c in made]
        for body in bodies[:50]:  # warm-up: connections, caches
            await client.post(body)
        for body in bodies[50:]:
            started = time.perf_counter()
            reply = await client.post(body)
            latencies.append(time.perf_counter() - started)
            reasons[reply.body.get("reason", str(reply.status))] += 1
    q = statistics.quantiles(latencies, n=100)
    print(f"{args.kind}: n={len(latencies)} p50={q[49] * 1000:.2f} ms "
          f"p99={q[98] * 1000:.2f} ms max={max(latencies) * 1000:.2f} ms reasons={dict(reasons)}")


if __name__ == "__main__":
    asyncio.run(main())
