"""What a store's Redis servers did over a measurement: their CPU time (and commands).

`ServerCounters(url)` names the servers behind a `redis://` URL (its one server) or a
`rediscluster://` URL (every primary, found with `CLUSTER NODES` from a seed; replicas
too with `replicas=True`). `read()` sums their `used_cpu_sys + used_cpu_user` and
`total_commands_processed` (INFO): the difference of two reads over N decisions is the
Redis CPU per decision, the other half of "how many validators per primary". (The
commands count those a script runs too: not the client's round trips.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import redis


@dataclass(frozen=True)
class Counters:
    commands: int
    cpu_s: float

    def __sub__(self, earlier: Counters) -> Counters:
        return Counters(self.commands - earlier.commands, self.cpu_s - earlier.cpu_s)


class ServerCounters:
    """The Redis servers behind a store URL, read with INFO."""

    def __init__(self, url: str, *, replicas: bool = False) -> None:
        if url.startswith("rediscluster://"):
            self.nodes = _cluster_nodes(url, replicas=replicas)
        else:
            parts = urlsplit(url)
            self.nodes = [(parts.hostname or "127.0.0.1", parts.port or 6379)]

    def read(self) -> Counters:
        commands, cpu = 0, 0.0
        for host, port in self.nodes:
            client = redis.Redis(host=host, port=port, socket_timeout=2)
            try:
                info = client.info("all")
            finally:
                client.close()
            commands += int(info["total_commands_processed"])
            cpu += float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        return Counters(commands, cpu)


def _cluster_nodes(url: str, *, replicas: bool) -> list[tuple[str, int]]:
    seed = url.removeprefix("rediscluster://").split("?")[0].split(",")[0].rsplit("@", 1)[-1]
    host, _, port = seed.rpartition(":")
    client = redis.Redis(host=host.strip("[]"), port=int(port), socket_timeout=2)
    try:  # redis-py answers CLUSTER NODES as {"host:port": {"flags": "myself,master", …}}
        table = cast(dict[str, dict[str, Any]], client.cluster("NODES"))
    finally:
        client.close()
    nodes = []
    for address, node in table.items():
        flags = str(node.get("flags", "")).split(",")
        if "fail" in flags or not ("master" in flags or (replicas and "slave" in flags)):
            continue
        node_host, _, node_port = address.rpartition(":")
        nodes.append((node_host or host, int(node_port)))
    return nodes
