"""`holder_ref`: the pseudonym that stands for a holder everywhere (protocol §1)."""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives import hashes, hmac


@functools.lru_cache(maxsize=8)
def _keyed(pepper: bytes) -> hmac.HMAC:
    # Copying a context already keyed with the pepper halves the cost of a fresh one.
    return hmac.HMAC(pepper, hashes.SM3())


def holder_ref(pepper: bytes, ssn: str) -> str:
    """hex(HMAC-SM3(pepper, SSN as ASCII)[0:16]) — 32 lowercase hex characters."""
    mac = _keyed(pepper).copy()
    mac.update(ssn.encode("ascii"))
    return mac.finalize()[:16].hex()


def is_holder_ref(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)
