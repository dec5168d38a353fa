"""Instructions per step of one validation, counted by callgrind.

    python -m bench.stages [--kind card|qr] [--n 2000] [--keys DIR] [--timeit]

On a shared VM the wall clock moves by ±20 % from one minute to the next, which hides a
change worth 5 %; an instruction count does not move at all. This runs each step of a
validation over `n` prepared inputs under `valgrind --tool=callgrind` — counters zeroed
before the step and dumped after it (`callgrind_control`) — and prints instructions per
input. Compare two versions of the code with the same interpreter: counts differ
between builds (Debian's PGO + LTO build executes fewer than pyenv's), and they are not
time (OpenSSL's assembly and big-int loops run at several instructions per cycle, the
interpreter's dispatch at about one). `--timeit` prints CPU µs per input instead, best
of 3, without valgrind. docs/benchmarks.md says how to read them beside the other figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import hiredis
import orjson
from redis.asyncio import Redis

from bench import creds
from bench.pipeline import validation_requests
from validator.clock import SystemClock
from validator.config_folder import load_config
from validator.credentials.kinds import build_verifiers
from validator.decide import Decider, ValidationRequest
from validator.decision_body import render_decision
from validator.keygen import init_keyset
from validator.keyset import load_keyset
from validator.ledger.record import LedgerRecord
from validator.metrics import Metrics
from validator.state.keys import commit_keys
from validator.state.memory import MemoryStore
from validator.state.redis import RedisStore
from validator.state.store import Commit, CommitResult, Committed, Snapshot
from validator.web.terminal.schema import parse_validation

CONFIG = Path(__file__).resolve().parents[1] / "config"
CHILD_ENV = "BENCH_STAGES_DUMP"  # set for the process valgrind runs

Stage = tuple[str, Callable[[], object]]  # (name, one pass over the n inputs)


class _NullStore(MemoryStore):
    """Commits at once: the pipeline's own work, no store."""

    async def commit(self, commit: Commit) -> CommitResult:
        return Committed("1-0")


class _PackOnly:
    """A RespClient stand-in for RedisStore.commit: packs the command, answers at once."""

    def execute(self, *args: object) -> asyncio.Future[object]:
        hiredis.pack_command(args)  # type: ignore[arg-type]
        reply: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        reply.set_result([2, b"1-0"])
        return reply


def _body(req: ValidationRequest) -> bytes:
    cred = req.credential
    # Every presented credential is a dataclass of its wire fields (`kind` is not one).
    credential = {"type": cred.kind, **dataclasses.asdict(cast(Any, cred))}
    return orjson.dumps({"request_id": req.request_id, "scanned_at": req.scanned_at_text,
                         "credential": credential})


PIPELINE_KIND = {"qr": "QR ES256"}


def stages(kind: str, n: int, keys_dir: Path) -> list[Stage]:
    """The steps in the order a validation takes them, each over `n` fresh inputs."""
    keyset, engine = load_keyset(keys_dir), load_config(CONFIG).engine

    def decider(store: MemoryStore) -> Decider:
        return Decider(engine=engine, verifiers=build_verifiers(keyset),
                       store=store, clock=SystemClock())

    d = decider(_NullStore())
    # `--kind qr` is an ES256 device's QR, the pipeline's "QR ES256" rows.
    reqs = validation_requests(keys_dir, CONFIG, PIPELINE_KIND.get(kind, kind), n)
    bodies = [_body(r) for r in reqs]
    now = time.time()
    local_now = engine.local_from_unix(now)
    today = local_now.date()
    snap, txn = Snapshot(), "0" * 32
    verified = [d._verify(r, now, today) for r in reqs]  # warms the caches for "cached"
    verdicts = [d._judge(r, v, snap, now, local_now) for r, v in zip(reqs, verified, strict=True)]
    records = [d._record(r, txn, now, local_now, vd, v, snap)
               for r, v, vd in zip(reqs, verified, verdicts, strict=True)]
    answers = [render_decision(r.request_id, txn, vd.reason, vd.policy)
               for r, vd in zip(reqs, verdicts, strict=True)]
    commits = [d._commit(r, today, v, snap, vd, rec, ans, speculative=True)
               for r, v, vd, rec, ans in zip(reqs, verified, verdicts, records, answers,
                                             strict=True)]
    redis = RedisStore(Redis(), _PackOnly())  # type: ignore[arg-type]
    metrics = Metrics()

    def run(coroutines: Callable[[], list[object]]) -> Callable[[], object]:
        async def all_of() -> None:
            for c in coroutines():
                await c  # type: ignore[misc]
        return lambda: asyncio.run(all_of())

    return [
        ("parse the body (JSON, schema)", lambda: [parse_validation(b) for b in bodies]),
        # a new Decider per pass: empty caches (a new card's key, a new e-card's level 1)
        ("verify, first time seen", lambda: [
            cold._verify(r, now, today) for cold in (decider(_NullStore()),) for r in reqs]),
        ("verify, seen before (caches warm)", lambda: [d._verify(r, now, today) for r in reqs]),
        ("judge: counter, blocks, policy", lambda: [
            d._judge(r, v, snap, now, local_now) for r, v in zip(reqs, verified, strict=True)]),
        ("ledger record", lambda: [d._record(r, txn, now, local_now, vd, v, snap)
                                   for r, v, vd in zip(reqs, verified, verdicts, strict=True)]),
        ("ledger record as JSON", lambda: [r.to_json() for r in records]),
        ("decision JSON", lambda: [render_decision(r.request_id, txn, vd.reason, vd.policy)
                                   for r, vd in zip(reqs, verdicts, strict=True)]),
        ("commit arguments", lambda: [
            d._commit(r, today, v, snap, vd, rec, ans, speculative=True)
            for r, v, vd, rec, ans in zip(reqs, verified, verdicts, records, answers,
                                          strict=True)]),
        ("commit keys", lambda: [commit_keys(c) for c in commits]),
        ("Redis commit, client side, no I/O", run(lambda: [redis.commit(c) for c in commits])),
        ("decision metrics", lambda: _each(lambda r: metrics.record_decision(r, 0.001),
                                           records)),
        ("whole decision, caches warm, store answering at once",
         run(lambda: [d.validate(r) for r in reqs])),
    ]


def _each(step: Callable[[LedgerRecord], None], items: list[LedgerRecord]) -> None:
    for item in items:
        step(item)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def count_in_child(kind: str, n: int, keys_dir: Path) -> None:
    """Under callgrind: one dump per stage, named by its slug."""
    pid = str(os.getpid())
    for name, run in stages(kind, n, keys_dir):
        subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
        run()
        subprocess.run(["callgrind_control", "-d", _slug(name), pid], check=True,
                       capture_output=True)


def read_dumps(directory: Path) -> dict[str, int]:
    """slug → instructions, from callgrind's dump files (`desc: Trigger: … dump SLUG`,
    `summary: N`)."""
    counts: dict[str, int] = {}
    for path in directory.glob("callgrind.out.*"):
        text = path.read_text(errors="replace")
        trigger = re.search(r"^desc: Trigger: .*?dump (\S+)$", text, re.M)
        summary = re.search(r"^summary: (\d+)$", text, re.M)
        if trigger and summary:
            counts[trigger[1]] = int(summary[1])
    return counts


def count(kind: str, n: int, keys_dir: Path) -> list[tuple[str, float]]:
    """Instructions per input for each stage, from a valgrind run of this module."""
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: install valgrind (Debian: apt-get install "
                             "valgrind), or use --timeit")
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/callgrind.out",
                sys.executable, "-m", "bench.stages", "--kind", kind, "--n", str(n),
                "--keys", str(keys_dir)]
        env = {**os.environ, CHILD_ENV: "1"}
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"valgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
        counts = read_dumps(Path(tmp))
    names = [name for name, _ in stages(kind, 1, keys_dir)]
    return [(name, counts[_slug(name)] / n) for name in names if _slug(name) in counts]


def time_stages(kind: str, n: int, keys_dir: Path) -> list[tuple[str, float]]:
    """CPU µs per input for each stage, best of 3 passes (no valgrind)."""
    rows = []
    for name, run in stages(kind, n, keys_dir):
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            run()
            best = min(best, time.process_time() - started)
        rows.append((name, best / n * 1e6))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=["card", "qr"], default="card")
    p.add_argument("--n", type=int, default=2000, help="inputs per stage")
    p.add_argument("--keys", type=Path, help="key set (default: a new one in a temp dir)")
    p.add_argument("--timeit", action="store_true", help="µs per input, without valgrind")
    args = p.parse_args(argv)
    if args.n < 1:
        p.error("--n must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-keys-") as tmp:
        keys_dir = args.keys
        if keys_dir is None:
            keys_dir = Path(tmp) / "keys"
            init_keyset(keys_dir, region=creds.REGION, terminal_ids=[creds.TERMINAL])
        if os.environ.get(CHILD_ENV):
            count_in_child(args.kind, args.n, keys_dir)
            return 0
        unit = "µs/input" if args.timeit else "instr/input"
        rows = (time_stages if args.timeit else count)(args.kind, args.n, keys_dir)
    width = max(len(name) for name, _ in rows)
    print(f"{args.kind}, {args.n} inputs per stage, Python {sys.version.split()[0]} "
          f"({os.path.realpath(sys.executable)}), {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"{'stage':{width}}  {unit:>12}")
    digits = 1 if args.timeit else 0
    for name, value in rows:
        print(f"{name:{width}}  {value:12,.{digits}f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
