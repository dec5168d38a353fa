"""The simulator talks to loopback only: a load test aimed at a real deployment by
mistake would be an attack, so every command refuses any other target."""

from __future__ import annotations

import ipaddress
import urllib.parse

__all__ = ["NotLoopback", "require_loopback"]

_LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")


class NotLoopback(ValueError):
    """The URL's host is not 127.0.0.0/8, ::1 or localhost."""


def _is_loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1 is still this machine
            return ip.ipv4_mapped in _LOOPBACK_V4
        return ip == ipaddress.IPv6Address("::1")
    return ip in _LOOPBACK_V4


def require_loopback(url: str) -> str:
    """Return `url` without a trailing slash if its host is loopback, else raise."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - a bad port raises ValueError here, not in aiohttp later
    except ValueError as exc:
        raise NotLoopback(f"{url!r}: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise NotLoopback(f"{url!r}: need an http:// URL with a host")
    if host != "localhost":
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise NotLoopback(f"{url!r}: host {host!r} is a name; only localhost, "
                              "127.0.0.0/8 and ::1 are allowed") from None
        if not _is_loopback(ip):
            raise NotLoopback(f"{url!r}: {host} is not a loopback address")
    return url.rstrip("/")
