"""The lean open-loop generator: its response parser, its schedule against canned
servers on loopback, and a short run against the real validator."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import cast

import cbor2
import pytest
import uvloop
from aiohttp.test_utils import TestServer

from bench.creds import bus_terminals
from bench.http1 import BadResponse, ResponseParser
from bench.openloop import main
from bench.prebuild import Kind, Plan, build, holders
from bench.procs import Validator
from bench.sender import OpenLoop
from bench.steps import StepOptions, generator_argv
from terminals_sim.metronome import THREAD_NAME
from validator.config_folder import load_config
from validator.keygen import init_keyset
from validator.settings import Settings
from validator.web.app import create_app

CONFIG = Path(__file__).resolve().parents[2] / "config"
ACCEPT = b'{"request_id":"r1","decision":"accept","reason":"ok","fare":{"class":"full"}}'
DENY = b'{"request_id":"r1","decision":"deny","reason":"replayed"}'


def response(body: bytes = ACCEPT, status: str = "200 OK", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


# --- the parser --------------------------------------------------------------------------

def test_a_response_split_anywhere_comes_out_once_whole() -> None:
    wire = response()
    for cut in (1, 10, len(wire) - len(ACCEPT) - 2, len(wire) - 1):
        parser = ResponseParser()
        assert parser.feed(wire[:cut]) == []
        assert parser.pending
        (status, body, close), = parser.feed(wire[cut:])
        assert (status, body, close) == (200, ACCEPT, False)
        assert not parser.pending
    parser = ResponseParser()  # one byte at a time
    got = [r for i in range(len(wire)) for r in parser.feed(wire[i:i + 1])]
    assert [r.body for r in got] == [ACCEPT]


def test_two_responses_and_a_half_in_one_read() -> None:
    parser = ResponseParser()
    second = response(DENY, "409 Conflict", "Connection: close\r\n")
    got = parser.feed(response() + second + response()[:20])
    assert [(r.status, r.body, r.close) for r in got] == [(200, ACCEPT, False),
                                                            (409, DENY, True)]
    assert [r.status for r in parser.feed(response()[20:])] == [200]


@pytest.mark.parametrize("wire", [
    b"HTTX/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello",  # no length: until close
    b"x" * 20000,  # no end of head in sight
])
def test_what_cannot_be_framed_is_a_bad_response(wire: bytes) -> None:
    with pytest.raises(BadResponse):
        ResponseParser().feed(wire)


def test_a_response_without_a_body() -> None:
    (status, body, _), = ResponseParser().feed(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert (status, body) == (204, b"")


# --- the schedule, against canned servers --------------------------------------------------

Reply = Callable[[int], bytes | None]  # request number -> answer, or None: close instead
Start = Callable[..., Awaitable[int]]  # (reply, delay_s=0) -> the port of a new server


class _Canned(asyncio.Protocol):
    """Answers each request (framed by its Content-Length) with `reply(number)`, after
    `delay_s`, one at a time per connection; `None` closes the connection instead."""

    count = 0

    def __init__(self, reply: Reply, delay_s: float) -> None:
        self.reply, self.delay_s, self.buffer = reply, delay_s, b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's do not subclass asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = int(self.buffer[:end].lower().split(b"content-length:")[1].split(b"\r")[0])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            _Canned.count += 1
            answer = self.reply(_Canned.count)
            asyncio.get_running_loop().call_later(self.delay_s, self._answer, answer)

    def _answer(self, answer: bytes | None) -> None:
        assert self.transport is not None
        if answer is None:
            self.transport.close()
        elif not self.transport.is_closing():
            self.transport.write(answer)
            if b"Connection: close" in answer:
                self.transport.close()


@pytest.fixture
async def canned() -> AsyncIterator[Start]:
    servers: list[asyncio.Server] = []

    async def start(reply: Reply, delay_s: float = 0.0) -> int:
        _Canned.count = 0
        server = await asyncio.get_running_loop().create_server(
            lambda: _Canned(reply, delay_s), "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def run_against(port: int, rate: float, duration_s: float, *, connections: int = 8,
                      drain_s: float = 2.0) -> OpenLoop:
    requests = [f"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{i % 100:02d}".encode()
                for i in range(int(rate * duration_s))]
    load = OpenLoop(requests, rate, duration_s, drain_s=drain_s)
    await load.connect("127.0.0.1", port, connections)
    try:
        await load.run()
    finally:
        load.close()
        await asyncio.sleep(0.01)  # let the transports finish closing
    return load


async def test_errors_mismatches_and_closed_connections_are_counted(canned: Start) -> None:
    def reply(number: int) -> bytes | None:
        if number % 10 == 3:
            return None  # the server hangs up with the request in flight
        if number % 10 == 5:
            return response(b'{"error":"store_unavailable"}', "503 Service Unavailable")
        if number % 10 == 7:
            return response(DENY)
        if number % 10 == 9:  # answers, then hangs up
            return response(extra="Connection: close\r\n")
        return response()

    load = await run_against(await canned(reply), 200, 0.5)
    doc = load.report()
    assert doc["scheduled"] == 100
    assert doc["errors"] == {"connection_closed": 10, "http_503": 10}
    assert doc["mismatches"] == 10 and doc["decisions"] == {"accept/ok": 70, "deny/replayed": 10}
    assert doc["answered"] == 90  # every response, whatever its status
    assert len(load.connections) == 8  # each lost connection was replaced
    assert "deny" in doc["mismatch_samples"][0]


async def test_a_slow_server_shows_its_queue_no_coordinated_omission(canned: Start) -> None:
    """One connection to a server taking 10 ms per request, offered 200/s (one per 5 ms):
    request i waits for all before it. From the scheduled time the last ones wait
    ~0.5 s; timing each request from its send would have shown 10 ms throughout."""
    load = await run_against(await canned(lambda _: response(), 0.01), 200, 0.5,
                             connections=1)
    doc = load.report()
    assert doc["answered"] == 100 and not doc["errors"]
    assert doc["latency_ms"]["max"] >= 450
    assert doc["send_lag_ms"]["max"] >= 400  # they waited in the generator's queue
    assert doc["latency_ms"]["max"] - doc["send_lag_ms"]["max"] < 100
    # from its send each took its own ~10 ms: what the server alone adds
    assert 9 <= doc["service_ms"]["p50"] < 60 and doc["service_ms"]["max"] < 100


async def test_the_run_is_bounded_and_the_rest_is_unfinished(canned: Start) -> None:
    started = time.perf_counter()
    load = await run_against(await canned(lambda _: response(), 60.0), 100, 0.2,
                             drain_s=0.2)
    assert time.perf_counter() - started < 2
    assert load.report()["errors"] == {"unfinished": 20}


LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def metronomes() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


async def _lag_run() -> OpenLoop:
    server = await asyncio.get_running_loop().create_server(
        lambda: _Canned(lambda _: response(), 0.0), "127.0.0.1", 0)
    try:
        return await run_against(server.sockets[0].getsockname()[1], 230, 1.0)
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("loop", LOOPS)
def test_a_run_on_either_loop_sends_every_request_and_stops_its_metronome(loop: str) -> None:
    """How late requests leave (the metronome thread's point) is a figure of `make
    bench` — each step's send lag, the latency "from the send" beside the one from the
    scheduled time — not a bound asserted here, where a busy host would decide it."""
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        load = runner.run(_lag_run())
    doc = load.report()
    assert doc["answered"] == 230 and not doc["errors"]
    assert len(load.lags) == 230  # every request's send was timed
    assert not metronomes()  # close() stopped it


async def test_close_stops_the_metronome_before_the_schedule_ends() -> None:
    """No connections: every due request just queues, and the metronome keeps waking."""
    load = OpenLoop([b"x"] * 1000, 100, 10.0)
    task = asyncio.create_task(load.run())
    await asyncio.sleep(0.1)
    assert len(metronomes()) == 1 and 5 <= load.next <= 20
    load.close()
    assert not metronomes()
    sent = load.next
    await asyncio.sleep(0.05)
    assert load.next == sent  # nothing is scheduled after close()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_the_metronome_stops_with_its_loop_without_close() -> None:
    load = OpenLoop([b"x"] * 1000, 100, 10.0)

    async def start() -> None:
        asyncio.get_running_loop().create_task(load.run())
        await asyncio.sleep(0.05)
        assert len(metronomes()) == 1

    with asyncio.Runner() as runner:
        runner.run(start())  # then the runner cancels the run and closes the loop
    for thread in metronomes():
        thread.join(1.0)
    assert not metronomes()


# --- against the validator ---------------------------------------------------------------

@pytest.fixture
async def validator(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """The validator on loopback (memory store, the real clock: requests are signed now)."""
    keys = tmp_path / "keys"
    init_keyset(keys, region="369900", terminal_ids=list(load_config(CONFIG).terminals))
    server = TestServer(create_app(Settings(config_dir=CONFIG, keys_dir=keys,
                                            store_url="memory")), host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}", keys
    finally:
        await server.close()


@pytest.mark.parametrize("kind", ["card", "qr", "qr-sm2"])
async def test_every_request_is_accepted_by_the_validator(
        validator: tuple[str, Path], kind: Kind, tmp_path: Path) -> None:
    url, keys = validator
    plan = Plan(keys=keys, kind=kind, n=200, host=url.removeprefix("http://"),
                terminals=bus_terminals(keys, 4))
    if kind != "card":
        saved, sm2 = tmp_path / "holders.json", kind == "qr-sm2"
        plan = dataclasses.replace(plan, holders=holders(keys, 10, plan.now, saved, sm2=sm2))
        assert holders(keys, 10, plan.now, saved, sm2=sm2) == plan.holders  # from the file
        # an all-SM2 QR is SM2 on both levels (protocol §2.1); the ES256 QR has none
        assert {h.alg for h in plan.holders} == ({"SM2"} if sm2 else {"ES256", "EdDSA"})
        assert (_level1_alg(plan.holders[0].level1) == -65700) is sm2
    load = OpenLoop(build(plan, processes=1), 200, 1.0)
    await load.connect("127.0.0.1", int(url.rsplit(":", 1)[1]), 4)
    try:
        await load.run()
    finally:
        load.close()
    doc = load.report()
    assert doc["decisions"] == {"accept/ok": 200}, doc["mismatch_samples"]
    assert doc["errors"] == {} and doc["mismatches"] == 0
    assert 0 < doc["latency_ms"]["p50"] <= doc["latency_ms"]["max"] < 1000
    assert doc["achieved_rate"] > 190


def _level1_alg(level1: bytes) -> int:
    item = cbor2.loads(level1)
    protected = (item.value if isinstance(item, cbor2.CBORTag) else item)[0]
    return int(cbor2.loads(protected)[1])


def test_the_command_refuses_other_hosts(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not a loopback address"):
        main(["--url", "http://192.0.2.1:8080", "--keys", str(tmp_path), "--rate", "1"])


def test_the_step_runs_either_generator_at_the_terminal_front(tmp_path: Path) -> None:
    opts = StepOptions(keys=tmp_path / "keys", config=CONFIG, load_cpus="1")
    validator = Validator(keys=tmp_path / "keys", config=CONFIG, store_url="memory", workers=1,
                          loop="auto", cpus=None, log=tmp_path / "validator.log")  # not started
    assert validator.argv[validator.argv.index("--terminal-port") + 1] == \
        str(validator.terminal_port)
    lean = generator_argv(validator, opts, "bus-qr", 4000, seed=1, out_dir=tmp_path)
    assert lean[1:3] == ["-m", "bench.openloop"] and lean[-2:] == ["--cpus", "1"]
    assert lean[lean.index("--kind") + 1] == "qr"
    sm2 = generator_argv(validator, opts, "bus-qr-sm2", 1000, seed=1, out_dir=tmp_path)
    assert sm2[sm2.index("--kind") + 1] == "qr-sm2"
    # its own holders file: an ES256 step's holders are not an SM2 step's
    assert sm2[sm2.index("--holders-file") + 1] != lean[lean.index("--holders-file") + 1]
    assert lean[lean.index("--url") + 1] == validator.terminal_url != validator.url
    opts.generator = "sim"
    sim = generator_argv(validator, opts, "bus-qr", 4000, seed=1, out_dir=tmp_path)
    assert "terminals_sim" in sim and sim[sim.index("--scenario") + 1] == "bus-qr"
    assert "--sm2-share" not in sim
    sim = generator_argv(validator, opts, "bus-qr-sm2", 1000, seed=1, out_dir=tmp_path)
    assert sim[sim.index("--scenario") + 1] == "bus-qr"
    assert sim[sim.index("--sm2-share") + 1] == "1"
    assert sim[sim.index("--url") + 1] == validator.url  # the registry goes to the main port
    assert sim[sim.index("--terminal-url") + 1] == validator.terminal_url
    aiohttp = Validator(keys=tmp_path / "keys", config=CONFIG, store_url="memory", workers=1,
                        loop="auto", cpus=None, log=tmp_path / "v.log", front="aiohttp")
    assert "--terminal-port" not in aiohttp.argv and aiohttp.terminal_url == aiohttp.url
