"""`RedisClusterStore` and its URL: `rediscluster://[[user]:password@]HOST:PORT[,HOST:PORT…][?options]`.

The hosts are seed nodes: any one that answers gives the clients the cluster's map.
Options:

- `ssl=true`: TLS, verified against the system's certificate authorities (both clients
  of the store honour that; other TLS settings are refused rather than honoured by one
  client only);
- `min_replicas=N`: a decision is answered only after its commit reached N replicas
  (WAIT), so that a failover loses nothing a terminal was told (503 if they do not
  acknowledge within the call's deadline).

Anything else is refused, naming the option, so a misspelt setting never passes for a
working one.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from validator.state.cluster import CONNECTIONS_PER_OPERATION, DecisionPath
from validator.state.cluster_ops import Operations
from validator.state.resp_cluster import ClusterRespClient

SCHEME = "rediscluster://"
_BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


class ClusterUrlError(ValueError):
    """A `rediscluster://` URL that cannot be used as it is written."""


@dataclass(frozen=True)
class ClusterUrl:
    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    tls: bool = False
    min_replicas: int = 0


def parse_cluster_url(url: str) -> ClusterUrl:
    if not url.startswith(SCHEME):
        raise ClusterUrlError(f"expected {SCHEME}HOST:PORT[,HOST:PORT…]")
    rest, _, query = url[len(SCHEME):].partition("?")
    userinfo, at, hosts = rest.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    nodes = tuple(_node(part) for part in hosts.rstrip("/").split(","))
    tls, min_replicas = False, 0
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if name == "ssl" and value.lower() in _BOOLS:
            tls = _BOOLS[value.lower()]
        elif name == "min_replicas" and value.isdigit() and int(value) <= 16:
            min_replicas = int(value)
        elif name in ("ssl", "min_replicas"):
            expected = "true or false" if name == "ssl" else "a number of replicas, 0-16"
            raise ClusterUrlError(f"option {name}={value!r}: expected {expected}")
        else:
            raise ClusterUrlError(f"unknown option {name!r} (known: ssl, min_replicas)")
    return ClusterUrl(nodes, username, password, tls, min_replicas)


def _node(part: str) -> tuple[str, int]:
    host, colon, port = part.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterUrlError(f"seed node {part!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


class RedisClusterStore(DecisionPath, Operations):
    """The `Store` protocol on a Redis Cluster. Owns its client; `close()` closes it."""

    @classmethod
    def from_url(cls, url: str, *, ledger_retention_days: int = 400, timeout_s: float = 1.0,
                 max_in_flight: int = 256, **capacity: int) -> RedisClusterStore:
        """A store on the cluster the seed nodes of `url` belong to. Nothing is
        contacted yet: the first call finds the cluster (StoreUnavailable until then).
        `capacity` may set `reservation_ttl_ms` and `clock_margin_ms` (capacity.py)."""
        parsed = parse_cluster_url(url)
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
            username=parsed.username, password=parsed.password,
            socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            # per node: enough for every operation in flight to land on one node
            max_connections=max_in_flight * CONNECTIONS_PER_OPERATION,
            # A few quick retries ride out MOVED/ASK after a failover or a resharding
            # step; the call's own deadline (timeout_s) bounds them all.
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 3),
            ssl=parsed.tls,
        )
        hot = ClusterRespClient(parsed.nodes, username=parsed.username,
                                password=parsed.password, tls=parsed.tls, timeout_s=timeout_s)
        return cls(client, hot, ledger_retention_days=ledger_retention_days, timeout_s=timeout_s,
                   max_in_flight=max_in_flight, min_replicas=parsed.min_replicas, **capacity)
