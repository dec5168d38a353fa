"""The registry of signature algorithms: one line per algorithm.

Adding an algorithm is a module that describes it with an `Algorithm` (see
`es256.py`) and one line in `REGISTERED`. The COSE layer, the QR verifier and the
trust list find it here by the number or name they read off the wire.
"""

from __future__ import annotations

from collections.abc import Mapping

from validator.credentials import ed25519, es256, sm2
from validator.credentials.algorithm import Algorithm

__all__ = ["BY_COSE_ALG", "BY_COSE_KEY", "BY_JOSE_ALG", "REGISTERED"]

REGISTERED: tuple[Algorithm, ...] = (
    es256.ALGORITHM,
    ed25519.ALGORITHM,
    sm2.ALGORITHM,
)

# The protected header's `alg` → its algorithm (protocol §2, step 1).
BY_COSE_ALG: Mapping[int, Algorithm] = {a.cose_alg: a for a in REGISTERED}
# A COSE_Key's (kty, crv) → the algorithm its key fits (step 5).
BY_COSE_KEY: Mapping[tuple[int, int], Algorithm] = {(a.cose_kty, a.cose_crv): a for a in REGISTERED}
# The trust list's JOSE `alg` → its algorithm (§6).
BY_JOSE_ALG: Mapping[str, Algorithm] = {a.jose_alg: a for a in REGISTERED}
