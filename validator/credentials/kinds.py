"""The registry of credential kinds: the wire `credential.type` → how to verify it.

Adding a kind is a module with its presented value (with a `kind` name) and its
verifier (with `check`, see `verifier.py`), plus one line in `KINDS`. The decision
pipeline dispatches on the name; the ledger and the metrics label decisions with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from validator.credentials.essc_qr import EsscVerifier, QrScan
from validator.credentials.ssc_card import CardTap, CardVerifier
from validator.credentials.trust import TrustList
from validator.credentials.verifier import Verifier
from validator.values import value

__all__ = ["KINDS", "CacheSizes", "VerifierKeys", "build_verifiers"]


class VerifierKeys(Protocol):
    """The keys the verifiers read; `validator.keyset.KeySet` has them. A protocol: the
    key set loader imports `credentials.trust`, so importing it here would be a cycle."""

    @property
    def trust_list(self) -> TrustList: ...
    @property
    def card_master_keys(self) -> Mapping[tuple[str, int], bytes]: ...
    @property
    def pepper(self) -> bytes: ...


@value
class CacheSizes:
    """Entries of each verifier's cache (the serve settings give them)."""

    level1: int = 4096  # verified e-card credentials (the QR's level 1)
    card_keys: int = 65_536  # diversified card keys and their holder refs


# kind → a verifier for that kind, from the key set and the cache sizes.
KINDS: Mapping[str, Callable[[VerifierKeys, CacheSizes], Verifier]] = {
    QrScan.kind: lambda keys, sizes: EsscVerifier(
        keys.trust_list, level1_cache_size=sizes.level1),
    CardTap.kind: lambda keys, sizes: CardVerifier(
        keys.card_master_keys, keys.pepper, card_key_cache_size=sizes.card_keys),
}


def build_verifiers(keys: VerifierKeys, sizes: CacheSizes | None = None) -> dict[str, Verifier]:
    """One verifier per registered kind, for `Decider(verifiers=...)`."""
    sizes = sizes or CacheSizes()
    return {kind: make(keys, sizes) for kind, make in KINDS.items()}
