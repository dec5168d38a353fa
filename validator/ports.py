"""Whether the service can listen where it is told to, asked before anything starts.

`serve` binds its ports last, after configuration, keys and the store are up; a port
already taken would surface there as a traceback from inside the event loop, and with
`--workers N` (SO_REUSEPORT) a second service could even join the first one's port and
share its traffic. `check` binds each port the way the server will — SO_REUSEADDR,
every address `host` resolves to, no SO_REUSEPORT, so it fails where any listener
is — and releases it at once; the error names the option and the port in one line:

    --port 8080: a service already answers on 127.0.0.1:8080 (is another validator running?)
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping

__all__ = ["PortUnavailable", "answers", "check"]

CONNECT_TIMEOUT_S = 0.5


class PortUnavailable(Exception):
    """The service could not listen as configured; the message names the option."""


def check(host: str, ports: Mapping[str, int | None]) -> None:
    """Raise `PortUnavailable` unless every port of `ports` (option name → port) is free.

    None means the port is not served, and 0 any free port: neither is checked.
    """
    chosen = [(option, port) for option, port in ports.items() if port]
    first: dict[int, str] = {}
    for option, port in chosen:
        if port in first:
            raise PortUnavailable(f"{option} {port}: the same port as {first[port]}; "
                                  f"each needs a port of its own")
        first[port] = option
    for option, port in chosen:
        _try_bind(host, port, option)


def answers(host: str, port: int) -> bool:
    """True if something accepts TCP connections on host:port (a wildcard host: loopback)."""
    target = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        with socket.create_connection((target, port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def _try_bind(host: str, port: int, option: str) -> None:
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortUnavailable(f"--host {host}: does not resolve ({exc.strerror})") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio's create_server binds it
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise PortUnavailable(_describe(exc, host, port, option)) from None


def _describe(exc: OSError, host: str, port: int, option: str) -> str:
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"--host {host}: not an address of this machine"
    if exc.errno == errno.EADDRINUSE and answers(host, port):
        return (f"{option} {port}: a service already answers on {host}:{port} "
                "(is another validator running?)")
    if exc.errno == errno.EADDRINUSE:
        return f"{option} {port}: address already in use"
    if exc.errno == errno.EACCES:
        return f"{option} {port}: permission denied (ports below 1024 need privileges)"
    return f"{option} {port}: {exc.strerror or exc}"
