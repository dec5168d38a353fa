"""`Algorithm`: everything the service knows about one COSE signature algorithm.

Each algorithm lives in its own module (`es256.py`, `ed25519.py`, ...) and describes
itself with one `Algorithm`: its numbers and names on the wire (COSE `alg`, COSE_Key
`kty`/`crv`, the trust list's JOSE `alg`, `kty`, `crv`), how to build a verifying key
from coordinates and read them back, and how to verify. `algorithms.py` registers them; nothing else
switches on an algorithm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Algorithm"]


def _always(key: Any) -> bool:
    return True


def _same(key: Any) -> Any:
    return key


@dataclass(frozen=True, slots=True, eq=False)
class Algorithm:
    """One signature algorithm and the key type that goes with it (protocol §2, step 5).

    `load(x, y)` builds a verifying key from its coordinates (`y` is None for a key
    with one coordinate) or raises `FormatError`; every key it returns is a `key_type`.
    `verify(key, signature, data)` is False for any signature that does not verify,
    including one of the wrong length. `coordinates(key)` is the inverse of `load` for an
    issuer's own public key (its library's type), None for a key of another algorithm;
    the trust list writes them into a JWK. `point_is_valid` is a deferred, costlier point
    check for algorithms whose `load` leaves it out (see `ed25519.py`). `pack`/`unpack`
    turn a key into the form a long-lived cache holds (one the garbage collector does
    not track) and back.
    """

    cose_alg: int
    jose_alg: str
    jwk_kty: str
    jwk_crv: str
    cose_kty: int
    cose_crv: int
    key_type: type[Any]
    load: Callable[[bytes, bytes | None], Any]
    verify: Callable[[Any, bytes, bytes], bool]
    coordinates: Callable[[Any], tuple[bytes, bytes | None] | None]
    point_is_valid: Callable[[Any], bool] = _always
    pack: Callable[[Any], Any] = _same
    unpack: Callable[[Any], Any] = _same

    @property
    def has_y(self) -> bool:
        """Whether keys have a `y` coordinate (EC2) or only `x` (OKP)."""
        return self.jwk_kty == "EC"
