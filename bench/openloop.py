"""A lean open-loop load generator: pre-built requests, raw keep-alive connections.

    python -m bench.openloop --url http://127.0.0.1:PORT --keys DIR --kind card|qr|qr-sm2 \\
        --rate R --duration S [--card-mode fresh|returning] [--connections 64] [--out DIR]

The simulator's runner (`python -m terminals_sim load`) costs ~400 µs of CPU per request,
too much to offer thousands per second from one core. Here every request is built
before the clock starts (bench/prebuild.py: complete HTTP/1.1 bytes, signed), and the
loop only writes bytes and reads answers: uvloop, N keep-alive connections, each a small
`asyncio.Protocol` with one request in flight (no pipelining), no task per request.

Request i is due at t0 + i/rate. A `Metronome` thread (terminals_sim/metronome.py)
sleeps until the next due time and wakes the loop (~0.1 ms late; an event loop's own
timer, 1 ms resolution, was ~0.5 ms), which writes every due request onto a free
connection; when none is free, requests wait in a FIFO queue and the next answer frees
one. Latency runs from the *scheduled* time, so queueing in the generator counts (no
coordinated omission); `send lag` reports how late requests left. Every request is a
fresh, valid credential: an answer other than 200 is an error, a 200 other than
accept/ok a mismatch. After `duration` nothing more is scheduled; answers are awaited
for `--drain` seconds, the rest count `unfinished`. Loopback targets only.

Card taps are new cards' first taps (`--card-mode fresh`, the dearest for the
validator), or those of `--cards` returning cards tapping in turn, each card's counter
one up on each of its taps (`returning`: the validator's per-card caches warm, as for
a city's regular passengers; bench/creds.py says why their taps stay in order).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import uvloop

from bench.creds import CARD_MODES, CARDS, bus_terminals
from bench.prebuild import QR_KINDS, Kind, Plan, build, holders
from bench.procs import cpu_list
from bench.sender import OpenLoop, render
from terminals_sim.netguard import NotLoopback, require_loopback


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.openloop", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the validator, on loopback")
    p.add_argument("--keys", type=Path, required=True, help="its key set (protocol §6)")
    p.add_argument("--kind", choices=["card", *QR_KINDS], default="card",
                   help="card taps, QR codes (ES256 issuer, ES256/EdDSA devices), or "
                        "all-SM2 QR codes (protocol §2.1)")
    p.add_argument("--card-mode", choices=CARD_MODES, default="fresh",
                   help="card taps: fresh (each a new card's first) or returning (a pool "
                        "of --cards cards, each tapping again, its counter one up)")
    p.add_argument("--cards", type=int, default=CARDS,
                   help="returning cards in the pool; more than --connections (default "
                        f"{CARDS:,}: at 6,000/s a card taps every 3.3 s)")
    p.add_argument("--rate", type=float, required=True, help="requests per second")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of scheduling")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--drain", type=float, default=5.0, help="seconds to await answers after")
    p.add_argument("--terminals", type=int, default=16, help="bus readers to sign as")
    p.add_argument("--holders", type=int, default=2000, help="e-cards behind the QR codes")
    p.add_argument("--holders-file", type=Path,
                   help="keep the e-card holders here, to reuse them in the next run")
    p.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)),
                   help="processes building the requests (default: every CPU allowed)")
    p.add_argument("--cpus", help="pin the sending loop to these CPUs once built (\"1\", "
                   "\"1-3\"); the build uses every CPU allowed")
    p.add_argument("--out", type=Path, help="write report.json here")
    return p


def prepare(args: argparse.Namespace, url: str) -> tuple[Plan, list[bytes], float]:
    """The plan and its requests, and how long they took to build."""
    started = time.perf_counter()
    n = max(round(args.rate * args.duration), 1)
    kind: Kind = args.kind
    plan = Plan(keys=args.keys, kind=kind, n=n, host=urllib.parse.urlsplit(url).netloc,
                terminals=bus_terminals(args.keys, args.terminals), card_mode=args.card_mode,
                cards=args.cards)
    if kind in QR_KINDS:
        plan = dataclasses.replace(plan, holders=holders(args.keys, args.holders, plan.now,
                                                         args.holders_file,
                                                         sm2=kind == "qr-sm2"))
    return plan, build(plan, args.processes), time.perf_counter() - started


async def run(args: argparse.Namespace, url: str, requests: list[bytes], set_up: str
              ) -> OpenLoop:
    """Connect, print the "set-up" line (bench/steps.py starts its clocks there), run."""
    parts = urllib.parse.urlsplit(url)
    load = OpenLoop(requests, args.rate, args.duration, drain_s=args.drain)
    await load.connect(parts.hostname or "127.0.0.1", parts.port or 80, args.connections)
    print(set_up, flush=True)
    try:
        await load.run()
    finally:
        load.close()
    return load


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        url = require_loopback(args.url)
    except NotLoopback as exc:
        raise SystemExit(str(exc)) from None
    if not url.startswith("http://"):
        raise SystemExit(f"{url}: plain http:// only")
    if args.card_mode == "returning" and args.cards <= args.connections:
        # a card's next tap leaves only after `cards - connections` other answers: with
        # no more cards than connections, two of its taps could be in flight at once
        raise SystemExit(f"--cards {args.cards}: more than --connections "
                         f"({args.connections}), or a card's taps may overtake each other")
    plan, requests, build_s = prepare(args, url)
    if args.kind in QR_KINDS and time.time() + args.duration + args.drain > plan.qr_deadline():
        raise SystemExit(f"the QR codes would expire during the run (built in {build_s:.1f} "
                         "s): make --duration shorter")
    if args.cpus:
        os.sched_setaffinity(0, cpu_list(args.cpus))
    # The requests (tens of thousands of bytes objects in a list) and everything imported
    # live until the end: out of every collection's way, as the validator does (serve.py).
    gc.collect()
    gc.freeze()
    cards = f" ({plan.describe_cards()})" if args.kind == "card" else ""
    set_up = (f"set-up: {len(requests)} {args.kind} requests{cards} built in {build_s:.1f} s "
              f"({args.processes} processes); {args.rate:g}/s for {args.duration:g} s over "
              f"{args.connections} connections")
    load = uvloop.run(run(args, url, requests, set_up))
    doc: dict[str, Any] = {"kind": args.kind, "rate": args.rate, "duration_s": args.duration,
                           "connections": args.connections, "build_s": round(build_s, 2),
                           "terminals": len(plan.terminals)}
    if args.kind == "card":
        doc |= {"card_mode": plan.card_mode,  # and the pool's size, if returning
                "cards": plan.cards if plan.card_mode == "returning" else None}
    doc |= load.report()
    print(render(doc), flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(json.dumps(doc, indent=2) + "\n")
    return 0 if not doc["errors"] and not doc["mismatches"] else 1


if __name__ == "__main__":
    sys.exit(main())
