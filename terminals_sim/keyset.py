"""The simulator's reading of a key set folder (protocol §6).

Issuers and cards are personalised from the same files the service trusts: the issuer
private keys (dev/test sets only), the card master keys, the holder pepper and the
terminal secrets. `holder_ref` is computed here as the city's e-card channel does (§1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, hmac

from terminals_sim.ecard import Issuer, load_issuers

__all__ = ["KeySetProblem", "SimKeys", "holder_ref", "load_sim_keys"]


class KeySetProblem(ValueError):
    """A key set folder the simulator cannot use; the message names the file."""


def holder_ref(pepper: bytes, ssn: str) -> str:
    """hex(HMAC-SM3(pepper, SSN)[0:16]), 32 lowercase hex characters (§1)."""
    mac = hmac.HMAC(pepper, hashes.SM3())
    mac.update(ssn.encode("ascii"))
    return mac.finalize()[:16].hex()


@dataclass(frozen=True)
class SimKeys:
    pepper: bytes
    master_keys: dict[tuple[str, int], bytes]  # (region, kv) -> MK
    terminal_secrets: dict[str, bytes]
    issuers: tuple[Issuer, ...]

    def holder_ref(self, ssn: str) -> str:
        return holder_ref(self.pepper, ssn)

    def card_regions(self) -> dict[str, int]:
        """Regions that can personalise physical cards, each with its newest kv."""
        newest: dict[str, int] = {}
        for region, kv in self.master_keys:
            newest[region] = max(kv, newest.get(region, 0))
        return newest


def _json(path: Path) -> object:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise KeySetProblem(f"{path}: {exc}") from exc


def load_sim_keys(folder: Path) -> SimKeys:
    """Load the parts of a §6 key set a terminal, a card personaliser and an issuer use."""
    try:
        pepper = bytes.fromhex((folder / "holder-pepper.hex").read_text("ascii").strip())
        raw_mk = _json(folder / "card-master-keys.json")
        raw_secrets = _json(folder / "terminal-secrets.json")
        if not isinstance(raw_mk, dict) or not isinstance(raw_secrets, dict):
            raise KeySetProblem(f"{folder}: key files must hold JSON objects")
        master_keys = {(str(k["region"]), int(k["kv"])): bytes.fromhex(k["key"])
                       for k in raw_mk["keys"]}
        secrets = {str(t): bytes.fromhex(s) for t, s in raw_secrets.items()}
        issuers = tuple(load_issuers(folder)) if (folder / "issuers").is_dir() else ()
    except KeySetProblem:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeySetProblem(f"{folder}: not a usable key set: {exc!r}") from exc
    return SimKeys(pepper, master_keys, secrets, issuers)
