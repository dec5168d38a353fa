"""A real Redis Cluster on loopback, for the tests and `make bench`: 3 primaries and 3 replicas.

`RedisClusterNodes.start()` picks six free ports below 55535 whose cluster bus port
(port + 10000) is free too — Redis refuses a cluster port whose bus port would pass
65535 — starts `redis-server --cluster-enabled yes` on each, joins them with
`redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`, and waits until every
node reports `cluster_state:ok`. `kill(port)` is a `kill -9` of one node (a failover
test), `revive(port)` starts it again on its own port and configuration, so it rejoins
as a replica of whoever took its slots. The binaries are Debian's redis-server package,
the one the single-Redis fixture uses.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from pathlib import Path

NODES = 6
NODE_TIMEOUT_MS = 1000  # how long a silent primary stays up before its replica takes over
START_TIMEOUT_S = 30.0


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_ports(count: int) -> list[int]:
    """`count` ports below 55535, each free with its bus port (+10000) free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(20000, 55535)
        if port not in ports and port + 10000 not in ports and \
                _bindable(port) and _bindable(port + 10000):
            ports.append(port)
    return ports


def command(port: int, *args: str, timeout_s: float = 2.0) -> bytes:
    """One raw RESP command to one node (set-up and inspection only)."""
    payload = f"*{len(args)}\r\n".encode()
    for arg in args:
        data = arg.encode()
        payload += b"$%d\r\n%s\r\n" % (len(data), data)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as conn:
        conn.sendall(payload)
        reply = b""
        while True:  # a bulk reply (CLUSTER INFO) may come in more than one segment
            chunk = conn.recv(65536)
            reply += chunk
            if not chunk or _complete(reply):
                return reply


def _complete(reply: bytes) -> bool:
    if reply[:1] != b"$":
        return reply.endswith(b"\r\n")
    header, _, body = reply.partition(b"\r\n")
    return int(header[1:]) < 0 or len(body) >= int(header[1:]) + 2


class RedisClusterNodes:
    """Six `redis-server` processes in cluster mode, persistence off."""

    def __init__(self, binary: str, cli: str, workdir: Path) -> None:
        self.binary, self.cli, self.workdir = binary, cli, workdir
        self.ports = free_cluster_ports(NODES)
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return "rediscluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def start(self) -> None:
        for port in self.ports:
            self._spawn(port)
        for port in self.ports:
            self._wait(lambda p=port: _answers(p), f"node {port} did not answer PING")
        subprocess.run(
            [self.cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )
        self.wait_ok()

    def _spawn(self, port: int) -> None:
        folder = self.workdir / str(port)
        folder.mkdir(exist_ok=True)
        self._processes[port] = subprocess.Popen(
            [self.binary, "--port", str(port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
             "--save", "", "--appendonly", "no", "--dir", str(folder),
             "--logfile", str(folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def _wait(self, ready: object, what: str, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise RuntimeError(what)
            time.sleep(0.05)

    def wait_ok(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until every running node reports `cluster_state:ok`, 3 primaries serve and
        every other running node replicates one of them."""
        def ok() -> bool:
            running = self.running()
            return all(b"cluster_state:ok" in _info(p) for p in running) and \
                len(self.primaries()) == 3 and len(self.replicas()) == len(running) - 3
        self._wait(ok, "the cluster did not reach cluster_state:ok", timeout_s)

    def running(self) -> list[int]:
        return [p for p, proc in self._processes.items() if proc.poll() is None]

    def primaries(self) -> list[int]:
        """The ports of the running nodes that serve slots as primaries now."""
        return [p for p in self.running() if b"role:master" in command(p, "INFO", "replication")
                and _owns_slots(p)]

    def replicas(self) -> list[int]:
        """The ports of the running nodes that replicate a primary whose link is up."""
        return [p for p in self.running()
                if b"master_link_status:up" in command(p, "INFO", "replication")]

    def primary_of(self, key: str) -> int:
        """The port of the primary that serves `key`'s slot now."""
        any_node = self.running()[0]
        slot = int(command(any_node, "CLUSTER", "KEYSLOT", key)[1:].strip())
        for line in command(any_node, "CLUSTER", "NODES").decode().splitlines():
            fields = line.split()
            if len(fields) < 8 or "master" not in fields[2] or "fail" in fields[2]:
                continue
            for span in fields[8:]:
                first, _, last = span.partition("-")
                if first.isdigit() and int(first) <= slot <= int(last or first):
                    return int(fields[1].split("@")[0].rsplit(":", 1)[1])
        raise LookupError(f"no primary serves slot {slot}")

    def replica_of(self, primary: int) -> int:
        for port in self.replicas():
            info = command(port, "INFO", "replication").decode()
            if f"master_port:{primary}\r" in info:
                return port
        raise LookupError(f"no replica of {primary}")

    def pause(self, port: int) -> None:
        """Freeze one node (SIGSTOP): its connections stay open, nothing answers."""
        self._processes[port].send_signal(signal.SIGSTOP)

    def resume(self, port: int) -> None:
        self._processes[port].send_signal(signal.SIGCONT)

    def flush(self) -> None:
        for port in self.primaries():
            assert command(port, "FLUSHALL").startswith(b"+OK")

    def kill(self, port: int) -> None:
        """`kill -9` one node."""
        proc = self._processes[port]
        proc.kill()
        proc.wait(timeout=10)

    def revive(self, port: int) -> None:
        self._spawn(port)
        self._wait(lambda: _answers(port), f"node {port} did not come back")

    def stop(self) -> None:
        for proc in self._processes.values():
            proc.kill()
        for proc in self._processes.values():
            proc.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        return command(port, "PING", timeout_s=0.5).startswith(b"+PONG")
    except OSError:
        return False


def _info(port: int) -> bytes:
    try:
        return command(port, "CLUSTER", "INFO")
    except OSError:
        return b""


def _owns_slots(port: int) -> bool:
    myself = [line for line in command(port, "CLUSTER", "NODES").split(b"\n")
              if b"myself" in line]
    return bool(myself) and len(myself[0].split()) > 8


class ClusterService:
    """`make bench`'s store with `BENCH_STORE=cluster`: a private 3+3 cluster on loopback,
    with what the benchmark reads of a store server (`bench/procs.py`, `StoreServer`):
    its URL (`?min_replicas=N` with `min_replicas`), the nodes' CPU time and forks."""

    def __init__(self, workdir: Path, *, min_replicas: int = 0) -> None:
        import shutil

        workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = RedisClusterNodes(shutil.which("redis-server") or "redis-server",
                                       shutil.which("redis-cli") or "redis-cli", workdir)
        self.min_replicas = min_replicas

    @property
    def url(self) -> str:
        return self.nodes.url + (f"?min_replicas={self.min_replicas}" if self.min_replicas
                                 else "")

    def start(self) -> None:
        self.nodes.start()

    def wait_ready(self) -> None:
        self.nodes.wait_ok()

    def cpu_seconds(self) -> float | None:
        """Every node's CPU time so far (primaries and replicas: a replica applies every
        write too)."""
        from bench.procs import cpu_seconds

        return cpu_seconds([proc.pid for proc in self.nodes._processes.values()])

    def forks(self) -> int | None:
        total = 0
        for port in self.nodes.running():
            for line in command(port, "INFO", "stats").decode().splitlines():
                if line.startswith("total_forks:"):
                    total += int(line.split(":")[1])
        return total

    def stop(self) -> None:
        self.nodes.stop()
