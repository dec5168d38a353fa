"""The simulator's command line: `python -m terminals_sim COMMAND ...`.

    load        open-loop load test at a fixed rate; report.json + report.html
    scenarios   every scenario once; exit 1 on any mismatch
    demo        a modest realistic stream until Ctrl-C (for `make run`)
    population  write a population's registry.ndjson and blocks.ndjson
    offline-drill  bus readers decide offline, upload, and are checked; exit 1 on a mismatch

Every command talks to loopback only (127.0.0.0/8, ::1, localhost). Exit codes: 0 fine,
1 mismatches (or failed scenarios), 2 bad usage or set-up (bad URL, key set, config,
registry refused).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from terminals_sim.cityconf import ConfigProblem, load_city_config
from terminals_sim.demo import DemoOptions, run_demo
from terminals_sim.keyset import KeySetProblem, load_sim_keys
from terminals_sim.load_command import LoadOptions, run_load
from terminals_sim.netguard import NotLoopback, require_loopback
from terminals_sim.offline_drill import DrillOptions
from terminals_sim.offline_scenes import final_line, run_drill
from terminals_sim.offline_spells import SpellPlan
from terminals_sim.population import Population
from terminals_sim.registration import LoadError, register, write_exports
from terminals_sim.rehearsal import rehearse
from terminals_sim.scenarios import ALL, run_scenarios
from terminals_sim.traffic import MODES

__all__ = ["build_parser", "main"]


def _common(p: argparse.ArgumentParser, *, url: bool = True) -> None:
    if url:
        p.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8080")
        p.add_argument("--terminal-url", metavar="URL",
                       help="send POST /v1/validations here, e.g. a validator's "
                            "--terminal-port; default: --url")
    p.add_argument("--keys", type=Path, required=True, help="key set folder (protocol §6)")
    p.add_argument("--config", type=Path, default=Path("config"))
    p.add_argument("--seed", type=int, help="population seed (default: random, printed)")


def _registry(p: argparse.ArgumentParser) -> None:
    p.add_argument("--admin-token", help="load registry and blocks by the operator API")
    p.add_argument("--admin-token-file", type=Path, help="read the admin token from a file")
    p.add_argument("--store", help="persistent store URL: load by `python -m validator` CLI")


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser: every command and its options, as `main` reads them."""
    p = argparse.ArgumentParser(prog="python -m terminals_sim", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    load = sub.add_parser("load", help="open-loop load test")
    _common(load)
    _registry(load)
    load.add_argument("--rate", type=float, required=True, help="requests per second")
    load.add_argument("--duration", type=float, required=True, help="seconds of scheduling")
    load.add_argument("--terminals", type=int, default=8, help="terminals to simulate")
    load.add_argument("--scenario", default="bus-taps", choices=sorted(MODES))
    load.add_argument("--out", type=Path, help="folder for report.json and report.html")
    load.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    load.add_argument("--population", type=int,
                      help="holders (default: max(2000, 3 × rate))")
    load.add_argument("--drain", type=float, default=10.0, help="seconds to wait at the end")
    load.add_argument("--timeout", type=float, default=2.0, help="per-attempt timeout (s)")
    load.add_argument("--faults", type=float, default=0.0, help="share of fault requests")
    load.add_argument("--p99-budget-ms", type=float, default=400.0,
                      help="fail the run if the p99 latency is over this (default 400: "
                           "the terminal-side budget of a whole transaction)")
    load.add_argument("--quiet", action="store_true", help="no progress line")
    load.add_argument("--sm2-share", type=float, default=0.0,
                      help="share of e-card holders whose e-card is SM2 on both levels "
                           "(protocol §2.1; needs an SM2 issuer in the key set)")
    load.set_defaults(run=_load)

    sc = sub.add_parser("scenarios", help="run every scenario once")
    _common(sc)
    _registry(sc)
    sc.add_argument("--only", help="comma-separated scenario names: " +
                    ",".join(s.name for s in ALL))
    sc.add_argument("--json", type=Path, help="also write the report as JSON here")
    sc.set_defaults(run=_scenarios)

    demo = sub.add_parser("demo", help="a realistic stream until interrupted")
    _common(demo)
    _registry(demo)
    demo.add_argument("--rate", type=float, default=10.0)
    demo.add_argument("--population", type=int, default=1000,
                      help="people out in the city at once; new ones keep arriving")
    demo.add_argument("--faults", type=float, default=0.02, help="share of fault requests")
    demo.add_argument("--rehearse", type=float, metavar="HOURS",
                      help="no service: print the deny rate of HOURS of this demo, hour "
                           "by hour, from the current local time")
    demo.add_argument("--every", type=float, default=5.0, help="seconds between summaries")
    demo.add_argument("--sm2-share", type=float, default=0.15,
                      help="share of e-card holders whose e-card is SM2 on both levels "
                           "(protocol §2.1), if the key set has an SM2 issuer")
    demo.add_argument("--offline-spells", type=int, default=1, metavar="N",
                      help="terminals offline at a time, now and then: they decide alone "
                           "from their bundle and upload when back (0: never; default 1)")
    demo.add_argument("--offline-terminals", metavar="ID,ID",
                      help="the terminals that may go offline (default: any)")
    demo.add_argument("--offline-minutes", default="3-12", metavar="MIN-MAX",
                      help="how long a spell lasts (default 3-12); as long again, on "
                           "average, between two spells of one slot")
    demo.set_defaults(run=_demo)

    pop = sub.add_parser("population", help="export a population's registry and blocks "
                                            "(and load them into a service with --url)")
    _common(pop, url=False)
    _registry(pop)
    pop.add_argument("--url", help="also load them into this service (token or store)")
    pop.add_argument("--size", type=int, default=1000)
    pop.add_argument("--out", type=Path, required=True)
    pop.add_argument("--by", choices=["holder_ref", "ssn"], default="holder_ref")
    pop.set_defaults(run=_population)

    drill = sub.add_parser("offline-drill", help="offline readers: decide, upload, check")
    drill.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8080")
    drill.add_argument("--keys", type=Path, required=True, help="key set folder (protocol §6)")
    drill.add_argument("--terminals", type=int, default=4, help="bus readers offline (≥ 2)")
    drill.add_argument("--minutes", type=float, default=10.0,
                       help="the offline period, played on the readers' clocks")
    drill.add_argument("--admin-token", help="an admin token: the drill blocks a card and "
                                             "reads the settlement")
    drill.add_argument("--admin-token-file", type=Path, help="read the admin token from a file")
    drill.set_defaults(run=_offline_drill)
    return p


def _token(args: argparse.Namespace) -> str | None:
    if args.admin_token_file is not None:
        return str(args.admin_token_file.read_text("utf-8").strip())
    return args.admin_token  # type: ignore[no-any-return]


def _load(args: argparse.Namespace) -> int:
    options = LoadOptions(
        url=args.url, keys_dir=args.keys, config_dir=args.config, rate=args.rate,
        duration_s=args.duration, terminals=args.terminals, scenario=args.scenario,
        out_dir=args.out, connections=args.connections, population=args.population,
        seed=args.seed, admin_token=_token(args), store_url=args.store, drain_s=args.drain,
        timeout_s=args.timeout, fault_share=args.faults, progress=not args.quiet,
        terminal_url=args.terminal_url, p99_budget_ms=args.p99_budget_ms,
        sm2_share=args.sm2_share)
    # everything a usage error can be is refused here, before set-up and the network
    require_loopback(options.url)
    if options.terminal_url is not None:
        require_loopback(options.terminal_url)
    problems = options.problems()
    if problems:
        raise ValueError("; ".join(problems))
    doc = asyncio.run(run_load(options))
    if not doc["passed"]:
        print(doc["verdict"], file=sys.stderr)
        return 1
    return 0


def _scenarios(args: argparse.Namespace) -> int:
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    report = asyncio.run(run_scenarios(args.url, args.keys, args.config, _token(args),
                                       store_url=args.store, seed=args.seed, only=only,
                                       terminal_url=args.terminal_url))
    print(report.text())
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False), "utf-8")
    return 0 if report.ok else 1


def _demo(args: argparse.Namespace) -> int:
    if args.rehearse is not None:
        return _rehearse(args)
    options = DemoOptions(url=args.url, keys_dir=args.keys, config_dir=args.config,
                          rate=args.rate, population=args.population, every_s=args.every,
                          seed=args.seed, admin_token=_token(args), store_url=args.store,
                          terminal_url=args.terminal_url, fault_share=args.faults,
                          sm2_share=args.sm2_share, offline=_spell_plan(args))
    try:
        result = asyncio.run(run_demo(options))
    except KeyboardInterrupt:
        print("demo stopped", file=sys.stderr)
        return 0
    return 1 if result.mismatches else 0


def _spell_plan(args: argparse.Namespace) -> SpellPlan:
    low, _, high = str(args.offline_minutes).partition("-")
    try:
        minutes = (float(low), float(high or low))
    except ValueError:
        raise ValueError("--offline-minutes takes MIN-MAX, e.g. 3-12") from None
    if not 0 < minutes[0] <= minutes[1] or args.offline_spells < 0:
        raise ValueError("--offline-minutes takes 0 < MIN <= MAX, and --offline-spells "
                         "a number of terminals (0: none)")
    length = (minutes[0] * 60, minutes[1] * 60)
    terminals = tuple(t.strip() for t in (args.offline_terminals or "").split(",") if t.strip())
    return SpellPlan(at_once=args.offline_spells, terminals=terminals, length_s=length,
                     gap_s=length)


def _rehearse(args: argparse.Namespace) -> int:
    if not 0 < args.rehearse <= 72 or args.rate <= 0:
        raise ValueError("--rehearse takes 0 < HOURS <= 72, and --rate must be positive")
    keys, city = load_sim_keys(args.keys), load_city_config(args.config)
    hours = rehearse(keys, city, start=time.time(), hours=args.rehearse, rate=args.rate,
                     seed=args.seed if args.seed is not None else 1, fault_share=args.faults,
                     crowd_size=args.population)
    for hour in hours:
        print(hour.line())
    requests = sum(h.requests for h in hours)
    denied = sum(sum(h.denies.values()) for h in hours)
    print(f"all: {requests} requests, denied {denied / max(requests, 1):.1%}")
    return 0


def _population(args: argparse.Namespace) -> int:
    keys, city = load_sim_keys(args.keys), load_city_config(args.config)
    population = Population(keys, city, seed=args.seed if args.seed is not None else 1)
    holders = population.generate(args.size)
    registry, blocks = write_exports(holders, args.out, by=args.by)
    print(f"{len(holders)} holders: wrote {registry} and {blocks}")
    if args.url:
        url = require_loopback(args.url)

        async def push() -> str:
            async with aiohttp.ClientSession() as session:
                done = await register(session, url, holders, admin_token=_token(args),
                                      store_url=args.store, keys_dir=args.keys,
                                      config_dir=args.config, workdir=args.out)
            return done.message

        print(asyncio.run(push()))
    return 0


def _offline_drill(args: argparse.Namespace) -> int:
    token = _token(args)
    if not token:
        raise ValueError("offline-drill needs --admin-token or --admin-token-file")
    options = DrillOptions(url=require_loopback(args.url), keys_dir=args.keys,
                           admin_token=token, terminals=args.terminals,
                           minutes=args.minutes)
    result = asyncio.run(run_drill(options))
    print(final_line(result))
    return 1 if result["mismatches"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except (NotLoopback, ConfigProblem, KeySetProblem, LoadError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return result
