"""The two terminal fronts side by side: `wrk` ceilings in alternating rounds.

    python -m bench.fronts [--rounds 3] [--kinds card,qr] [--server-cpus 0] [--load-cpus 1]

One redis-server, then per round and kind a validator with each front (the lean
terminal front of `serve --terminal-port`, and aiohttp's main port), saturated by `wrk`
for 10 s (bench/ceiling.py). Rounds alternate the fronts so that both see the same
moments of this VM, whose speed moves by a fifth between minutes. Prints answers/s and
server CPU µs per validation; writes bench-results/fronts-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from bench.ceiling import run_ceiling
from bench.procs import FRONTS, ROOT, RedisServer, Validator
from validator.config_folder import load_config
from validator.keygen import init_keyset


def main() -> int:
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(prog="python -m bench.fronts", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--kinds", default="card,qr")
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--load-cpus", default=f"1-{cores - 1}" if cores > 1 else "0")
    p.add_argument("--out", type=Path, default=ROOT / "bench-results")
    args = p.parse_args()
    out = args.out / f"fronts-{dt.datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True)
    config, keys = ROOT / "config", out / "keys"
    init_keyset(keys, region="369900", terminal_ids=list(load_config(config).terminals))
    redis = RedisServer(out / "redis", args.load_cpus)
    redis.start()
    rows: list[dict[str, Any]] = []
    try:
        redis.wait_ready()
        print(f"{'round':>5} {'kind':5} {'front':8} {'answers/s':>10} {'µs/validation':>14}")
        for index in range(args.rounds):
            order = FRONTS if index % 2 == 0 else tuple(reversed(FRONTS))
            for kind in (k.strip() for k in args.kinds.split(",") if k.strip()):
                for front in order:
                    rows.append(_one(index, kind, front, keys, config, redis, args, out))
                    row = rows[-1]
                    print(f"{index + 1:>5} {kind:5} {front:8} {row['answers_per_s']:>10,.0f} "
                          f"{row['server_cpu_us']:>14.0f}", flush=True)
    finally:
        redis.stop()
    (out / "fronts.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\nresults: {out / 'fronts.json'}")
    return 0


def _one(index: int, kind: str, front: str, keys: Path, config: Path, redis: RedisServer,
         args: argparse.Namespace, out: Path) -> dict[str, Any]:
    step = out / f"{index + 1}-{kind}-{front}"
    step.mkdir()
    validator = Validator(keys=keys, config=config, store_url=redis.url, workers=1,
                          loop="auto", cpus=args.server_cpus, log=step / "validator.log",
                          front=front)
    validator.start()
    try:
        validator.wait_ready()
        ceiling = run_ceiling(validator, keys, kind, args.load_cpus, step)
    finally:
        validator.stop()
    if ceiling is None:
        raise SystemExit("wrk is not installed (make wrk)")
    return {"round": index + 1, "kind": kind, "front": front,
            "answers_per_s": ceiling["answered_per_s"],
            "server_cpu_us": ceiling["server_cpu_us_per_validation"],
            "non_2xx": ceiling["non_2xx"]}


if __name__ == "__main__":
    raise SystemExit(main())
