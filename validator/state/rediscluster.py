"""`RedisClusterStore` and its URL: `rediscluster://[[user]:password@]HOST:PORT[,HOST:PORT…][?options]`.

The hosts are seed nodes: any one that answers gives the client the cluster's map.
Options, spelled as redis-py spells them: `ssl=true` (TLS), `ssl_ca_certs`,
`ssl_certfile`, `ssl_keyfile`, `ssl_cert_reqs` (`required` | `optional` | `none`),
`ssl_check_hostname` (`true` | `false`). Anything else is refused, naming the option,
so a misspelt setting never passes for a working one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from validator.state.cluster import DecisionPath
from validator.state.cluster_ops import Operations

SCHEME = "rediscluster://"
_TLS_TEXT = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
_BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


class ClusterUrlError(ValueError):
    """A `rediscluster://` URL that cannot be used as it is written."""


@dataclass(frozen=True)
class ClusterUrl:
    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    tls: dict[str, str | bool] = field(default_factory=dict)


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
    tls: dict[str, str | bool] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if name in ("ssl", "ssl_check_hostname"):
            if value.lower() not in _BOOLS:
                raise ClusterUrlError(f"option {name}={value!r}: expected true or false")
            tls[name] = _BOOLS[value.lower()]
        elif name in _TLS_TEXT:
            tls[name] = value
        else:
            raise ClusterUrlError(f"unknown option {name!r} (known: ssl, "
                                  f"ssl_check_hostname, {', '.join(_TLS_TEXT)})")
    return ClusterUrl(nodes, username, password, tls)


def _node(part: str) -> tuple[str, int]:
    host, colon, port = part.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterUrlError(f"seed node {part!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


class RedisClusterStore(DecisionPath, Operations):
    """The `Store` protocol on a Redis Cluster. Owns its client; `close()` closes it."""

    @classmethod
    def from_url(cls, url: str, *, ledger_retention_days: int = 400, timeout_s: float = 1.0,
                 max_connections: int = 64, **capacity: int) -> RedisClusterStore:
        """A store on the cluster the seed nodes of `url` belong to. Nothing is
        contacted yet: the first call finds the cluster (StoreUnavailable until then).
        `capacity` may set `reservation_ttl_ms` and `clock_margin_ms` (capacity.py)."""
        parsed = parse_cluster_url(url)
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
            username=parsed.username, password=parsed.password,
            socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            max_connections=max_connections,
            # A few quick retries ride out MOVED/ASK after a failover or a resharding
            # step; the call's own deadline (timeout_s) bounds them all.
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 3),
            **parsed.tls,  # type: ignore[arg-type]
        )
        return cls(client, ledger_retention_days=ledger_retention_days, timeout_s=timeout_s,
                   **capacity)
