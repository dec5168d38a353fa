"""Card taps in the benchmark: new cards' first taps ("fresh") or a pool of returning
cards, each counter one up per tap ("returning"); built alike on any number of
processes, threaded from `make bench` to both generators, and accepted by a real
validator on Redis without a mismatch."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import run as bench_run
from bench.ceiling import render as render_ceiling
from bench.ceiling import warm_up
from bench.creds import REGION, bus_terminals, ecard_holders
from bench.openloop import main as openloop_main
from bench.prebuild import PARALLEL_FROM, Plan, build, build_range
from bench.procs import PYTHON, ROOT, Validator
from bench.sender import OpenLoop
from bench.steps import StepOptions, generator_argv
from bench.summary import render_summary, summarise
from bench.wrk_requests import main as wrk_requests_main
from terminals_sim.card import card_id_for, make_ssn
from terminals_sim.ecard import Issuer
from validator.config_folder import load_config
from validator.credentials.es256 import COSE_ALG as ES256_ALG
from validator.credentials.essc_qr import parse_level1, parse_level2
from validator.credentials.sm2 import COSE_ALG as SM2_ALG
from validator.holders.ssn import parse_ssn
from validator.keygen import init_keyset
from validator.policy.types import PolicyInput

CONFIG = Path(__file__).resolve().parents[2] / "config"
Tap = tuple[str, dict[str, Any]]  # (X-Terminal-Id, credential)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    made = tmp_path_factory.mktemp("card-modes") / "keys"
    init_keyset(made, region=REGION, terminal_ids=list(load_config(CONFIG).terminals))
    return made


def plan(keys: Path, n: int, *, host: str = "127.0.0.1:1", **options: Any) -> Plan:
    return Plan(keys=keys, kind="card", n=n, host=host, terminals=bus_terminals(keys, 4),
                **options)


def taps(requests: list[bytes]) -> list[Tap]:
    """Each request's terminal and credential, read back from its HTTP/1.1 bytes."""
    read = []
    for request in requests:
        head, body = request.split(b"\r\n\r\n", 1)
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
        read.append((headers["X-Terminal-Id"], json.loads(body)["credential"]))
    return read


def identity(tap: Tap) -> tuple[str, str, str, int]:
    """What must not depend on the process that built a tap (its UN, cryptogram and the
    request_id are random)."""
    terminal, credential = tap
    return terminal, credential["card_id"], credential["ssn"], credential["atc"]


# --- what the requests are -----------------------------------------------------------------

def test_each_returning_card_counts_up_by_one(keys: Path) -> None:
    returning = plan(keys, 50, card_mode="returning", cards=7)
    built = taps(build(returning, processes=1))
    for i, (_, credential) in enumerate(built):
        assert credential["card_id"] == card_id_for(REGION, returning.first_serial + i % 7)
        assert credential["atc"] == i // 7 + 1
    by_card: dict[str, list[int]] = {}
    for _, credential in built:
        by_card.setdefault(credential["card_id"], []).append(credential["atc"])
    assert len(by_card) == 7
    assert sorted(by_card.values(), key=len) == [[1, 2, 3, 4, 5, 6, 7]] * 6 + \
        [[1, 2, 3, 4, 5, 6, 7, 8]]  # 50 = 7 * 7 + 1: card 0 taps an eighth time
    assert len({c["ssn"] for _, c in built}) == 7  # each card its own holder
    # a range that starts mid-pool, as a second process builds it: the same counters
    assert [identity(t) for t in taps(build_range(returning, range(23, 50)))] == \
        [identity(t) for t in built[23:]]


def test_a_parallel_build_makes_the_same_taps_as_one_process(keys: Path) -> None:
    """`build` splits the indices in halves (2,500 each, not a multiple of 300: a card's
    taps fall in both), built by two processes."""
    returning = plan(keys, PARALLEL_FROM, card_mode="returning", cards=300)
    alone, parallel = build(returning, processes=1), build(returning, processes=2)
    assert [identity(t) for t in taps(parallel)] == [identity(t) for t in taps(alone)]
    assert len(alone) == PARALLEL_FROM
    request_ids = {json.loads(r.split(b"\r\n\r\n", 1)[1])["request_id"] for r in alone + parallel}
    assert len(request_ids) == 2 * PARALLEL_FROM  # a retry is no tap


def test_no_card_taps_twice_within_a_pool_of_requests(keys: Path) -> None:
    pool = 11
    built = taps(build(plan(keys, 100, card_mode="returning", cards=pool), processes=1))
    last_seen: dict[str, int] = {}
    for i, (_, credential) in enumerate(built):
        before = last_seen.get(credential["card_id"])
        assert before == (None if i < pool else i - pool), (i, before)
        last_seen[credential["card_id"]] = i


def test_fresh_cards_are_as_before(keys: Path) -> None:
    fresh = plan(keys, 60)
    assert fresh.card_mode == "fresh"
    built = taps(build(fresh, processes=1))
    for i, (terminal, credential) in enumerate(built):
        serial = fresh.first_serial + i
        assert credential["card_id"] == card_id_for(REGION, serial)
        assert credential["ssn"] == make_ssn(
            REGION, dt.date(1950 + i % 50, 1 + i % 12, 1 + i % 28), serial % 1000)
        assert credential["atc"] == 1
        assert terminal == fresh.terminals[i % 4]
    assert plan(keys, 60).first_serial != fresh.first_serial  # a new run, new cards


@pytest.mark.parametrize("now", [
    None,  # today
    int(dt.datetime(2030, 12, 31, 20, tzinfo=dt.UTC).timestamp()),  # 1 January, local
])
def test_returning_holders_get_no_age_based_fare(keys: Path, now: int | None) -> None:
    """Under every age-based bus rule of config/policy.toml, so under no daily ride cap:
    the policy engine itself says so, for one whole cycle of birth dates (420)."""
    returning = plan(keys, 420, card_mode="returning", cards=420,
                     **({"now": now} if now else {}))
    engine = load_config(CONFIG).engine
    local = engine.local_from_unix(returning.now)
    off_peak = local.replace(hour=10)  # outside every no-offer window of the senior rules
    for _, credential in taps(build(returning, processes=1)):
        decision = engine.evaluate(PolicyInput(
            venue="bus:K1", at=off_peak,
            birth_date=parse_ssn(credential["ssn"], local.date())))
        assert decision.rule == "bus.standard" and not decision.concession_ride, decision.age


def test_qr_holders_get_no_age_based_fare(
    keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The e-card holders behind the QR steps scan many times a run: none may be a
    senior, whose scans past the daily cap would each cost two more round trips."""
    births: list[int] = []
    real_issue = Issuer.issue

    def recording(self: Issuer, sub: bytes, birth_date: int, *args: Any, **kw: Any) -> bytes:
        births.append(birth_date)
        return real_issue(self, sub, birth_date, *args, **kw)

    monkeypatch.setattr(Issuer, "issue", recording)
    now = int(dt.datetime(2026, 12, 31, 12, tzinfo=dt.UTC).timestamp())
    ecard_holders(keys, 60, now, device_algs=("ES256",))
    engine = load_config(CONFIG).engine
    off_peak = engine.local_from_unix(now).replace(hour=10)
    assert len(births) == 60
    for birth in births:
        decision = engine.evaluate(PolicyInput(
            venue="bus:K1", at=off_peak,
            birth_date=dt.date(birth // 10000, birth // 100 % 100, birth % 100)))
        assert decision.rule == "bus.standard" and not decision.concession_ride, birth


def test_the_plan_refuses_what_it_cannot_build(keys: Path) -> None:
    with pytest.raises(ValueError, match="card_mode"):
        plan(keys, 10, card_mode="regular")
    with pytest.raises(ValueError, match="cards 0"):
        plan(keys, 10, card_mode="returning", cards=0)
    assert plan(keys, 60_000, card_mode="returning").describe_cards() == (
        "returning cards: 20000 cards, up to 3 taps each, 67% of taps by a card seen before")
    assert plan(keys, 10, card_mode="returning").describe_cards() == (
        "returning cards: 10 cards, up to 1 tap each, 0% of taps by a card seen before")
    assert plan(keys, 10).describe_cards() == "new cards' first taps"


# --- threaded through the commands ---------------------------------------------------------

def test_the_ceiling_file_holds_returning_taps(keys: Path, tmp_path: Path) -> None:
    out = tmp_path / "wrk.tsv"
    wrk_requests_main(["--keys", str(keys), "--n", "200", "--card-mode", "returning",
                       "--cards", "65", "--out", str(out)])
    lines = [line.split("\t") for line in out.read_text().splitlines()]
    counters = [json.loads(body)["credential"]["atc"] for *_, body in lines]
    assert counters == [i // 65 + 1 for i in range(200)]
    with pytest.raises(SystemExit):  # no more cards than wrk's connections
        wrk_requests_main(["--keys", str(keys), "--card-mode", "returning", "--cards", "64",
                           "--out", str(out)])


@pytest.mark.parametrize(("kind", "alg"), [("qr", ES256_ALG), ("qr-sm2", SM2_ALG)])
def test_the_qr_ceiling_files_hold_one_algorithm_on_both_levels(
        keys: Path, tmp_path: Path, kind: str, alg: int) -> None:
    out = tmp_path / "wrk.tsv"
    wrk_requests_main(["--keys", str(keys), "--kind", kind, "--n", "6", "--holders", "3",
                       "--out", str(out)])
    for *_, body in (line.split("\t") for line in out.read_text().splitlines()):
        outer = parse_level2(json.loads(body)["credential"]["qr"])
        assert (outer.alg, parse_level1(outer.inner).alg) == (alg, alg)


def test_the_open_loop_wants_more_cards_than_connections(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--cards 64: more than --connections"):
        openloop_main(["--url", "http://127.0.0.1:1", "--keys", str(tmp_path), "--rate", "1",
                       "--card-mode", "returning", "--cards", "64"])


def test_make_bench_passes_the_card_mode_on(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    for name in ("BENCH_CARD_MODE", "CARD_MODE", "BENCH_GENERATOR"):
        monkeypatch.delenv(name, raising=False)
    assert bench_run.parse_options([]).card_mode == "fresh"
    monkeypatch.setenv("CARD_MODE", "returning")
    assert bench_run.parse_options([]).card_mode == "returning"
    monkeypatch.setenv("BENCH_CARD_MODE", "fresh")  # the BENCH_ twin first, as for others
    assert bench_run.parse_options([]).card_mode == "fresh"
    monkeypatch.setenv("BENCH_CARD_MODE", "regular")
    with pytest.raises(SystemExit):
        bench_run.parse_options([])
    with pytest.raises(SystemExit):
        bench_run.parse_options(["--card-mode", "returning", "--generator", "sim"])

    validator = Validator(keys=tmp_path, config=CONFIG, store_url="memory", workers=1,
                          loop="auto", cpus=None, log=tmp_path / "v.log")  # not started
    opts = StepOptions(keys=tmp_path, config=CONFIG, card_mode="returning")
    cards = generator_argv(validator, opts, "bus-taps", 1000, seed=1, out_dir=tmp_path)
    assert cards[cards.index("--card-mode") + 1] == "returning"
    assert "--card-mode" not in generator_argv(validator, opts, "bus-qr", 1000, seed=1,
                                               out_dir=tmp_path)
    opts.generator = "sim"
    with pytest.raises(ValueError, match="lean generator"):
        generator_argv(validator, opts, "bus-taps", 1000, seed=1, out_dir=tmp_path)


def test_the_summary_and_the_ceiling_name_the_card_mode() -> None:
    summary = summarise([], 25, card_mode="returning")
    assert "card" not in summary  # no card steps: nothing to name
    step = {"scenario": "bus-taps", "rate": 1000.0, "label": "ramp", "verdict": "ok",
            "cpu_us_per_validation": 150.0, "server_busy": 0.2, "generator_busy": 0.1,
            "latency_ms": {"p50": 0.6, "p99": 2.0}, "server_ms": {}}
    summary = summarise([step], 25, card_mode="returning")
    assert summary["card"]["card_mode"] == "returning"
    machine = {"load_average": [0.1, 0.1, 0.1]}
    assert "card (returning cards): highest sustained 1000/s" in \
        render_summary(summary, machine, machine)
    ceiling = {"kind": "card", "card_mode": "returning", "answered_per_s": 9000.0,
               "server_cpu_us_per_validation": 100.0, "non_2xx": 0, "replayed": 0,
               "wrk": {"50%": 6.0, "99%": 9.0}}
    assert "(returning cards: 20,000 cards tapping in turn" in render_ceiling([ceiling])


# --- against the validator, on Redis as in `make bench` ------------------------------------

@pytest.fixture
def service(tmp_path: Path, keys: Path, redis_url: str) -> Iterator[Validator]:
    """`serve` with its lean terminal front, as bench/run.py starts it."""
    started = Validator(keys=keys, config=CONFIG, store_url=redis_url, workers=1,
                        loop="auto", cpus=None, log=tmp_path / "validator.log")
    started.start()
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def test_a_returning_run_has_no_error_and_no_mismatch(service: Validator, keys: Path,
                                                      tmp_path: Path) -> None:
    """The command as a ramp step runs it: 300 taps of 30 cards, ten each, at 100/s."""
    run = subprocess.run([
        PYTHON, "-m", "bench.openloop", "--url", service.terminal_url, "--keys", str(keys),
        "--kind", "card", "--card-mode", "returning", "--cards", "30", "--rate", "100",
        "--duration", "3", "--connections", "8", "--drain", "2", "--processes", "1",
        "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "set-up: 300 card requests (returning cards: 30 cards, up to 10 taps each, " \
        "90% of taps by a card seen before)" in run.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["card_mode"], report["cards"]) == ("returning", 30)
    assert report["decisions"] == {"accept/ok": 300}, report["mismatch_samples"]
    assert report["errors"] == {} and report["mismatches"] == 0


async def test_a_replayed_request_is_a_retry_a_replayed_counter_a_mismatch(
        service: Validator, keys: Path) -> None:
    """What wrk's wrap-around sends (the same requests again) is answered again from the
    idempotency record; the same counters under new request_ids — a run that reused
    another's cards — are denials the generator counts as mismatches: each card's last
    counter (5) `replayed`, its lower ones (1-4) `card_clone_suspected`."""
    returning = plan(keys, 100, card_mode="returning", cards=20,
                     host=service.terminal_url.removeprefix("http://"))
    requests = build(returning, processes=1)
    first = await send(service, requests + requests)
    assert first["decisions"] == {"accept/ok": 200} and not first["errors"]
    again = await send(service, build(returning, processes=1))
    assert again["decisions"] == {"deny/card_clone_suspected": 80, "deny/replayed": 20}
    assert again["mismatches"] == 100


async def send(service: Validator, requests: list[bytes]) -> dict[str, Any]:
    load = OpenLoop(requests, 200, len(requests) / 200, drain_s=2.0)
    await load.connect("127.0.0.1", service.terminal_port, 4)
    try:
        await load.run()
    finally:
        load.close()
    return load.report()


def test_the_ceiling_warms_each_holders_credential_before_wrk(
        service: Validator, keys: Path, tmp_path: Path) -> None:
    """The first scan of each of the file's holders, one at a time, answered 200 (an
    all-SM2 QR: the SM2 issuer signature verified once, then cached); a wrk file is
    fresh for 60 s, so they are sent at once."""
    out = tmp_path / "wrk.tsv"
    wrk_requests_main(["--keys", str(keys), "--kind", "qr-sm2", "--n", "8", "--holders", "3",
                       "--out", str(out)])
    assert warm_up(service.terminal_url, out, 3) == 3
    assert warm_up(service.terminal_url, out, 100) == 8  # a short file: all of it
    with pytest.raises(RuntimeError, match="warm-up request 1: HTTP 401"):
        # a body changed after it was signed: the run stops there, not in wrk's counts
        line = out.read_text().splitlines()[0].replace('"essc_qr"', '"essc_qr" ')
        (tmp_path / "bad.tsv").write_text(line + "\n")
        warm_up(service.terminal_url, tmp_path / "bad.tsv", 1)
