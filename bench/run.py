"""`make bench`: the throughput benchmark, end to end on this machine, against the targets.

    python -m bench.run [--workers N] [--rates 500,1000,...] [--step-s 10] ...

1. A fresh key set, a redis-server on a free loopback port (AOF, `appendfsync
   everysec`), the micro-benchmarks (bench/micro.py).
2. The validator, `serve --workers N`, pinned to `--server-cpus` (default core 0);
   Redis and the load generator get the other cores (`--load-cpus`). Validations go to
   `--front lean` (default: the lean terminal front, `serve --terminal-port`) or
   `--front aiohttp` (the main port, which serves every route).
3. Per scenario (card taps on buses, QR scans on buses, all-SM2 QR scans on buses —
   protocol §2.1, `qr-sm2`): a warm-up, then open-loop
   steps of `--step-s` seconds at rising rates, until a step is not sustained (p99
   over `--p99-ms`, any error or mismatch, or the achieved rate short of the offered).
   A step that fails is run once more before the ramp ends: this is a shared 2-core
   machine. Then one step each at 50 % and 80 % of the highest sustained rate, for
   their latency. The generator is `--generator lean` (default;
   bench/openloop.py, pre-built requests, 30–45 µs of CPU per request) or `sim` (the
   simulator's runner, ~400 µs per request: it cannot offer more than ~2,000/s on a core).
   The lean generator's card taps are `--card-mode fresh` (default: each a new card's
   first tap, the dearest) or `returning` (20,000 cards tapping in turn, counters rising:
   the validator's per-card caches warm, as for a city's regular passengers).
4. One core's ceiling: `wrk` (when installed) replaying prepared requests in a closed
   loop, saturating the validator whatever rate the ramp sustained (bench/ceiling.py),
   after `--ceiling-pause-s` idle (default 20).
5. A table, and bench-results/<time>/summary.json (plus every step's report). Each step
   and ceiling says how often Redis forked meanwhile (an AOF rewrite, on the load's core)
   and Redis's own CPU per validation. With both QR kinds, `sm2_vs_es256`: the
   validator's CPU per validation of an all-SM2 QR beside an all-ES256 QR's, each at
   one core's ceiling (wrk: SM2 on both levels beside ES256 on both levels; the target
   is at most 2×). Without wrk, the ramps' figures at the highest rate both sustained
   stand in, beside the ramp's QR, whose device keys are half ES256, half EdDSA.

`--store cluster` (BENCH_STORE=cluster) runs the same steps against a private Redis
Cluster, 3 primaries + 3 replicas on loopback (bench/redis_cluster.py), through
`rediscluster://`; `cluster-wait` adds `?min_replicas=1` (a decision is answered once a
replica has it). The micro-benchmarks' pipeline rows then run on both one Redis and the
cluster — CPU per validation, Redis commands (round trips) and Redis CPU per
validation, side by side — and the steps report the cluster's CPU (every node) per
validation. The offline benchmarks run on one Redis only. `--store redis-fsync` runs
the steps against one Redis with `appendfsync always` (no answered decision lost on
power loss; Redis fsyncs once per event-loop turn, for every write of that turn).

Every option has an environment twin for `make bench`: BENCH_WORKERS, BENCH_RATES, …
(`--card-mode`: BENCH_CARD_MODE, or CARD_MODE).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from bench import machine
from bench.ceiling import WRK, render_probes, run_ceiling, run_probe
from bench.ceiling import render as render_ceiling
from bench.creds import CARD_MODES
from bench.procs import (
    FRONTS,
    PYTHON,
    ROOT,
    RedisServer,
    Service,
    StoreServer,
    Validator,
    cpu_list,
    pinned,
)
from bench.redis_cluster import ClusterService
from bench.steps import Step, StepOptions, run_step
from bench.summary import render_steps, render_summary, summarise
from validator.keygen import init_keyset

STORES = ("redis", "redis-fsync", "cluster", "cluster-wait")
# The pipeline rows the cluster is compared on, one Redis beside it (bench/pipeline.py).
CLUSTER_ROWS = "card,returning card,QR ES256,card at a spot,QR ES256 at a spot"
SCENARIOS = {"card": "bus-taps", "qr": "bus-qr", "qr-sm2": "bus-qr-sm2"}
CEILING_KINDS = ("card", "qr", "qr-sm2")  # bench/wrk_requests.py prepares these
SM2_TARGET = 2.0  # an all-SM2 QR costs at most 2x an ES256 QR per core
# Offline terminals (docs/operations.md): the bundle's sizes and refresh stall, and an
# upload's records against live QR scans, per core (each prints one JSON line).
OFFLINE_BENCHES = {"bundle": ["bench.bundle_size"], "batch_vs_live": ["bench.batch_rate"]}
STEP_PROBE_S = 1  # the host probe before each step (run_probe): ~50,000 answers
# Idle time before the ceiling, so that it measures the core and not what the ramp left
# busy. Ceilings straight after a ramp ran 15-50 % dearer than a new validator's; the
# cause was mostly Redis's AOF rewrites (docs/benchmarks.md, "AOF rewrites"), now out
# of the benchmark's Redis, but a settled machine is the fairer measurement anyway.
CEILING_PAUSE_S = 20
DEFAULT_RATES = "500,1000,1500,2000,2500,3000,3500,4000,4500,5000,6000,7000,8000,10000"


def _offline(cpus: str | None, redis: RedisServer, out: Path) -> dict[str, Any]:
    """The offline benchmarks, on the validator's core, before the load begins."""
    found: dict[str, Any] = {}
    for name, module in OFFLINE_BENCHES.items():
        extra = ["--store", f"redis://127.0.0.1:{redis.port}/14"] if name == "batch_vs_live" \
            else []
        bench = Service(pinned(cpus, [PYTHON, "-m", *module, *extra]), out / f"{name}.log")
        bench.start()
        assert bench.proc is not None
        bench.proc.wait()
        lines = (out / f"{name}.log").read_text().strip().splitlines()
        print(f"offline {name}: {lines[-1] if lines else '(no output)'}", flush=True)
        found[name] = json.loads(lines[-1]) if bench.proc.returncode == 0 and lines else None
    return found


def _env(name: str, default: str) -> str:
    return os.environ.get(f"BENCH_{name}") or default


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    cores = os.cpu_count() or 1
    p.add_argument("--workers", type=int, default=int(_env("WORKERS", "1")))
    p.add_argument("--rates", default=_env("RATES", DEFAULT_RATES))
    p.add_argument("--step-s", type=float, default=float(_env("STEP_S", "10")))
    p.add_argument("--kinds", default=_env("KINDS", "card,qr,qr-sm2"),
                   help="card,qr,qr-sm2 (qr-sm2: SM2 on both levels, protocol §2.1)")
    p.add_argument("--server-cpus", default=_env("SERVER_CPUS", "0"))
    p.add_argument("--load-cpus", default=_env("LOAD_CPUS", f"1-{cores - 1}" if cores > 1 else "0"))
    p.add_argument("--loop", default=_env("LOOP", "auto"), choices=["auto", "asyncio", "uvloop"])
    p.add_argument("--p99-ms", type=float, default=float(_env("P99_MS", "25")))
    p.add_argument("--terminals", type=int, default=int(_env("TERMINALS", "16")))
    p.add_argument("--connections", type=int, default=int(_env("CONNECTIONS", "64")))
    p.add_argument("--front", default=_env("FRONT", "lean"), choices=FRONTS,
                   help="where validations go: lean (serve --terminal-port, "
                        "validator/web/terminal/front.py) or aiohttp (the main port)")
    p.add_argument("--generator", default=_env("GENERATOR", "lean"), choices=["lean", "sim"],
                   help="lean: bench/openloop.py; sim: python -m terminals_sim load")
    p.add_argument("--card-mode", choices=CARD_MODES,
                   default=_env("CARD_MODE", os.environ.get("CARD_MODE") or "fresh"),
                   help="card taps: fresh (new cards' first taps) or returning (a pool of "
                        "cards tapping in turn; lean generator only)")
    p.add_argument("--ceiling-pause-s", type=float,
                   default=float(_env("CEILING_PAUSE_S", str(CEILING_PAUSE_S))),
                   help="idle seconds between the last step and the ceiling")
    p.add_argument("--store", default=_env("STORE", "redis"), choices=STORES,
                   help="redis (one Redis, appendfsync everysec), redis-fsync (one Redis, "
                        "appendfsync always), cluster (a private 3+3 Redis Cluster), "
                        "cluster-wait (the cluster with ?min_replicas=1)")
    p.add_argument("--skip-micro", action="store_true", default=bool(_env("SKIP_MICRO", "")))
    p.add_argument("--out", type=Path, default=Path(_env("OUT", str(ROOT / "bench-results"))))
    return p


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    """The run's options from `argv` (or the command line and BENCH_* environment);
    a bad value exits 2 with one line, as argparse does."""
    p = _parser()
    args = p.parse_args(argv)
    unknown = {k.strip() for k in args.kinds.split(",") if k.strip()} - set(SCENARIOS)
    if unknown:
        p.error(f"kinds {', '.join(sorted(unknown))}: each one of {', '.join(SCENARIOS)}")
    if args.store not in STORES:  # argparse leaves defaults (the environment) be
        p.error(f"store {args.store!r}: one of {', '.join(STORES)}")
    if args.card_mode not in CARD_MODES:  # argparse leaves defaults (the environment) be
        p.error(f"card mode {args.card_mode!r}: one of {', '.join(CARD_MODES)}")
    if args.card_mode != "fresh" and args.generator != "lean":
        p.error("returning cards are the lean generator's (--generator lean)")
    return args


def _cluster_rows(cpus: str | None, keys: Path, urls: dict[str, str], out: Path
                  ) -> list[dict[str, Any]]:
    """The pipeline rows on one Redis and on the cluster, alternately, best of two runs
    each (a shared machine), on the validator's core."""
    rows: dict[str, dict[str, Any]] = {}
    for run in range(2):
        for label, url in urls.items():
            log = out / f"pipeline-{label}-{run}.log"
            bench = Service(pinned(cpus, [PYTHON, "-m", "bench.pipeline", "--keys", str(keys),
                                          "--store", url, "--kinds", CLUSTER_ROWS]), log)
            bench.start()
            assert bench.proc is not None
            bench.proc.wait()
            for line in log.read_text().splitlines():
                if "client CPU" not in line:
                    continue
                name, _, rest = line.partition(")")
                us = float(rest.split()[0])
                key = name + ")"
                if key not in rows or us < rows[key]["us"]:
                    rows[key] = {"name": key, "us": us, "line": line.strip()}
    for row in rows.values():
        print(row["line"], flush=True)
    return list(rows.values())


def _store(kind: str, out: Path, cpus: str | None) -> RedisServer | ClusterService:
    if kind in ("redis", "redis-fsync"):
        return RedisServer(out / kind, cpus,
                           fsync="always" if kind == "redis-fsync" else "everysec")
    return ClusterService(out / "cluster", min_replicas=1 if kind == "cluster-wait" else 0)


def _ramp(validator: Validator, redis: StoreServer, opts: StepOptions, kind: str,
          rates: list[float], p99_ms: float, out: Path) -> list[Step]:
    scenario, seed = SCENARIOS[kind], 1000 * (list(SCENARIOS).index(kind) + 1)
    steps: list[Step] = []

    def step(rate: float, label: str) -> Step:
        nonlocal seed
        seed += 1
        out_dir = out / f"{kind}-{len(steps):02d}-{rate:g}"
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = run_probe(validator, opts.load_cpus, out_dir, "step", seconds=STEP_PROBE_S)
        done = run_step(validator, opts, scenario, rate, seed=seed, label=label,
                        out_dir=out_dir, redis=redis)
        done.probe_per_s = probe["answered_per_s"] if probe else None
        steps.append(done)
        print(render_steps([done], len(opts.server_cpus), p99_ms, header=False), flush=True)
        return done

    cards = f", {opts.card_mode} cards" if kind == "card" else ""
    print(f"\n== {kind} ({scenario}{cards}, {opts.generator} generator, "
          f"{validator.front} front) ==\n"
          + render_steps([], len(opts.server_cpus), p99_ms), flush=True)
    step(min(300.0, rates[0]), "warm-up")
    sustained = 0.0
    for rate in rates:
        if step(rate, "ramp").verdict(p99_ms) != "ok" and \
                step(rate, "retry").verdict(p99_ms) != "ok":
            break
        sustained = rate
    if sustained:
        for share, label in ((0.5, "50 %"), (0.8, "80 %")):
            step(round(sustained * share), label)
    return steps


def main() -> int:
    args = parse_options()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out / stamp
    out.mkdir(parents=True)
    config, keys = ROOT / "config", out / "keys"
    init_keyset(keys, region="369900", terminal_ids=_terminal_ids(config))
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    doc: dict[str, Any] = {"machine_before": machine.describe(), "options": {
        k: str(v) for k, v in vars(args).items()}, "card_mode": args.card_mode, "steps": []}
    print(machine.render(doc["machine_before"]), flush=True)

    redis = RedisServer(out / "redis", args.load_cpus)
    redis.start()
    services: list[RedisServer | ClusterService | Service] = [redis]
    store: RedisServer | ClusterService = redis
    try:
        redis.wait_ready()
        if args.store != "redis":
            store = _store(args.store, out, args.load_cpus)
            services.append(store)
            store.start()
            store.wait_ready()
            print(f"store: {args.store}, {store.url}", flush=True)
        if not args.skip_micro:  # on the validator's core, before the load begins
            micro = Service(pinned(args.server_cpus, [
                PYTHON, "-m", "bench.micro", "--keys", str(keys), "--out", str(out / "micro.json"),
                "--redis", f"redis://127.0.0.1:{redis.port}/15"]), out / "micro.log")
            micro.start()
            assert micro.proc is not None
            micro.proc.wait()
            print((out / "micro.log").read_text(), flush=True)
            doc["micro"] = json.loads((out / "micro.json").read_text())
            doc["offline"] = _offline(args.server_cpus, redis, out)
        if args.store.startswith("cluster") and not args.skip_micro:
            doc["store_rows"] = _cluster_rows(args.server_cpus, keys, {
                "redis": f"redis://127.0.0.1:{redis.port}/13", args.store: store.url}, out)
        validator = Validator(keys=keys, config=config, store_url=store.url,
                              workers=args.workers, loop=args.loop, cpus=args.server_cpus,
                              log=out / "validator.log", front=args.front)
        validator.start()
        services.append(validator)
        validator.wait_ready()
        probes = [p for p in [run_probe(validator, args.load_cpus, out, "before")] if p]
        opts = StepOptions(keys=keys, config=config, duration_s=args.step_s,
                           terminals=args.terminals, connections=args.connections,
                           load_cpus=args.load_cpus,
                           server_cpus=tuple(sorted(cpu_list(args.server_cpus))),
                           generator=args.generator, card_mode=args.card_mode)
        for kind in kinds:
            steps = _ramp(validator, store, opts, kind, rates, args.p99_ms, out / "steps")
            cores = len(opts.server_cpus)
            doc["steps"] += [{**s.as_dict(cores), "verdict": s.verdict(args.p99_ms)}
                             for s in steps]
        if args.ceiling_pause_s > 0 and shutil.which(WRK):
            print(f"\n(a {args.ceiling_pause_s:g} s pause before the ceiling: what a ramp "
                  "leaves busy settles first; docs/benchmarks.md)", flush=True)
            time.sleep(args.ceiling_pause_s)
        ceilings = [c for kind in kinds if kind in CEILING_KINDS and (c := run_ceiling(
            validator, keys, kind, args.load_cpus, out, card_mode=args.card_mode,
            redis=store))]
        doc["ceiling"] = ceilings
        print(render_ceiling(ceilings) if ceilings else "\n(wrk not installed: no ceiling)")
        comparison = sm2_vs_es256(doc["steps"], ceilings)
        if comparison is not None:
            doc["sm2_vs_es256"] = comparison
            print("\n" + render_comparison(comparison), flush=True)
        probes += [p for p in [run_probe(validator, args.load_cpus, out, "after")] if p]
        doc["host_probe"] = probes
        if probes:
            print("\n" + render_probes(probes), flush=True)
    finally:
        for service in reversed(services):
            service.stop()
    doc["machine_after"] = machine.describe()
    doc["summary"] = summarise(doc["steps"], args.p99_ms, card_mode=args.card_mode)
    (out / "summary.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print("\n" + render_summary(doc["summary"], doc["machine_before"], doc["machine_after"]))
    print(f"\nresults: {out}")
    return 0


def sm2_vs_es256(steps: list[dict[str, Any]], ceilings: list[dict[str, Any]] | None = None
                 ) -> dict[str, Any] | None:
    """The validator's CPU per validation of an all-SM2 QR beside an all-ES256 QR's,
    each at one core's ceiling (closed loop, saturated: what a core does flat out).
    Without both ceilings, the ramps' at the highest rate both sustained (CPU per request
    falls as the rate rises: same rates), beside the ramp's QR, half of whose device
    keys are EdDSA (cheaper to verify than ES256: the ratio comes out higher)."""
    at_ceiling = {c["kind"]: c for c in ceilings or ()
                  if c.get("server_cpu_us_per_validation") and not c.get("non_2xx")}
    if "qr" in at_ceiling and "qr-sm2" in at_ceiling:
        es256_c, sm2_c = at_ceiling["qr"], at_ceiling["qr-sm2"]
        es256_us = es256_c["server_cpu_us_per_validation"]
        sm2_us = sm2_c["server_cpu_us_per_validation"]
        basis: dict[str, Any] = {"basis": "ceiling", "es256_per_s": es256_c["answered_per_s"],
                                 "sm2_per_s": sm2_c["answered_per_s"]}
    else:
        def sustained(scenario: str) -> dict[float, float]:
            return {s["rate"]: s["cpu_us_per_validation"] for s in steps
                    if s["scenario"] == scenario and s["verdict"] == "ok"
                    and s["label"] in ("ramp", "retry")}
        es256, sm2 = sustained(SCENARIOS["qr"]), sustained(SCENARIOS["qr-sm2"])
        common = set(es256) & set(sm2)
        if not common:
            return None
        rate = max(common)
        es256_us, sm2_us = es256[rate], sm2[rate]
        basis = {"basis": "ramp", "rate": rate}
    ratio = sm2_us / es256_us
    return {**basis, "es256_cpu_us": es256_us, "sm2_cpu_us": sm2_us,
            "ratio": round(ratio, 2), "target": SM2_TARGET, "met": ratio <= SM2_TARGET}


def render_comparison(c: dict[str, Any]) -> str:
    verdict = "met" if c["met"] else "NOT met"
    if c["basis"] == "ceiling":
        where = (f"at one core's ceiling (ES256 {c['es256_per_s']:,.0f}/s, "
                 f"all-SM2 {c['sm2_per_s']:,.0f}/s)")
        baseline = "all-ES256"
    else:
        where, baseline = f"at {c['rate']:g}/s", "ES256/EdDSA"
    return (f"QR server CPU per validation {where}: {baseline} {c['es256_cpu_us']:.0f} µs, "
            f"all-SM2 {c['sm2_cpu_us']:.0f} µs = {c['ratio']:.2f}× (target ≤ "
            f"{c['target']:g}×: {verdict})")


def _terminal_ids(config: Path) -> list[str]:
    from validator.config_folder import load_config

    return list(load_config(config).terminals)


if __name__ == "__main__":
    raise SystemExit(main())
