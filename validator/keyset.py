"""Loading a key set folder (protocol §6) — any set in that layout, ours or not.

Every problem is reported as a `KeySetError` naming the file and what is wrong with it,
so a deployment with a broken key set fails at start-up with a message a person can act on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from validator.credentials.trust import TrustList, TrustListError

TRUST_LIST = "trust-list.json"
CARD_MASTER_KEYS = "card-master-keys.json"
PEPPER = "holder-pepper.hex"
TERMINAL_SECRETS = "terminal-secrets.json"
OPERATOR_TOKENS = "operator-tokens.json"
ISSUERS_DIR = "issuers"
# The offline bundle's signing key (docs/protocol.md, "Offline terminals"); optional: a
# set without it serves no bundles. Its public JWK is published for terminals.
BUNDLE_KEY = "bundle-key.pem"
BUNDLE_PUBLIC = "bundle-public.json"

ROLES = ("viewer", "admin")
_HEX = re.compile(r"[0-9a-fA-F]*")
_REGION = re.compile(r"[0-9]{6}")


class KeySetError(Exception):
    """The key set folder is missing a file or holds a malformed one."""


@dataclass(frozen=True, slots=True)
class OperatorToken:
    name: str
    role: str  # "viewer" | "admin"
    sha256: bytes  # SHA-256 of the UTF-8 token; the token itself is never stored


@dataclass(frozen=True, slots=True)
class KeySet:
    trust_list: TrustList
    card_master_keys: dict[tuple[str, int], bytes]  # (region, kv) -> 16-byte MK
    pepper: bytes
    terminal_secrets: dict[str, bytes]
    operator_tokens: tuple[OperatorToken, ...]
    bundle_key: Ed25519PrivateKey | None = None  # None: offline terminals disabled


def load_keyset(directory: Path) -> KeySet:
    """Read and check every file of the key set in `directory`."""
    if not directory.exists():
        raise KeySetError(f"{directory}: no such key set folder "
                          f"(`python -m validator keys init {directory}` makes one)")
    if not directory.is_dir():
        raise KeySetError(f"{directory}: not a key set folder")
    try:
        trust = TrustList.from_jwks(_read_json(directory / TRUST_LIST))
    except TrustListError as exc:
        raise KeySetError(f"{directory / TRUST_LIST}: {exc}") from None
    return KeySet(
        trust_list=trust,
        card_master_keys=_card_master_keys(directory / CARD_MASTER_KEYS),
        pepper=_pepper(directory / PEPPER),
        terminal_secrets=_terminal_secrets(directory / TERMINAL_SECRETS),
        operator_tokens=_operator_tokens(directory / OPERATOR_TOKENS),
        bundle_key=_bundle_key(directory / BUNDLE_KEY),
    )


def check_card_key_id(
    region: object, kv: object, region_name: str, kv_name: str
) -> tuple[str, int]:
    """A card master key's region (6 digits) and version (1-255), as the loader and
    `keys add-card-key` take them; `KeySetError` naming the bad one otherwise."""
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise KeySetError(f"{region_name}: expected 6 digits, got {region!r}")
    if not isinstance(kv, int) or isinstance(kv, bool) or not 1 <= kv <= 255:
        raise KeySetError(f"{kv_name}: expected an integer 1-255, got {kv!r}")
    return region, kv


def decode_hex(value: object, n_bytes: int, where: str) -> bytes:
    """The bytes a hex key stands for (protocol §1: keys are the bytes their hex decodes to)."""
    if not isinstance(value, str) or len(value) != 2 * n_bytes or not _HEX.fullmatch(value):
        raise KeySetError(f"{where}: expected {2 * n_bytes} hex characters")
    return bytes.fromhex(value)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeySetError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeySetError(f"{path}: unreadable JSON ({exc})") from None


def _card_master_keys(path: Path) -> dict[tuple[str, int], bytes]:
    doc = _read_json(path)
    entries = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise KeySetError(f"{path}: expected an object with a \"keys\" array")
    keys: dict[tuple[str, int], bytes] = {}
    for i, entry in enumerate(entries):
        where = f"{path}: keys[{i}]"
        if not isinstance(entry, dict):
            raise KeySetError(f"{where}: expected an object")
        region, kv = check_card_key_id(entry.get("region"), entry.get("kv"),
                                       f"{where}.region", f"{where}.kv")
        if (region, kv) in keys:
            raise KeySetError(f"{where}: duplicate key for region {region} kv {kv}")
        keys[(region, kv)] = decode_hex(entry.get("key"), 16, f"{where}.key")
    return keys


def _pepper(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeySetError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeySetError(f"{path}: unreadable ({exc})") from None
    return decode_hex(text, 32, str(path))


def _terminal_secrets(path: Path) -> dict[str, bytes]:
    doc = _read_json(path)
    if not isinstance(doc, dict):
        raise KeySetError(f"{path}: expected an object of terminal id -> 64 hex")
    return {tid: decode_hex(secret, 32, f"{path}: {tid}") for tid, secret in doc.items()}


def _bundle_key(path: Path) -> Ed25519PrivateKey | None:
    """The Ed25519 bundle signing key (PKCS#8 PEM), or None if the set has none."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeySetError(f"{path}: unreadable ({exc.strerror})") from None
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise KeySetError(f"{path}: not an unencrypted PKCS#8 PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeySetError(f"{path}: expected an Ed25519 key")
    return key


def _operator_tokens(path: Path) -> tuple[OperatorToken, ...]:
    doc = _read_json(path)
    entries = doc.get("tokens") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise KeySetError(f"{path}: expected an object with a \"tokens\" array")
    tokens = []
    for i, entry in enumerate(entries):
        where = f"{path}: tokens[{i}]"
        if not isinstance(entry, dict):
            raise KeySetError(f"{where}: expected an object")
        name, role = entry.get("name"), entry.get("role")
        if not isinstance(name, str) or not name:
            raise KeySetError(f"{where}.name: expected a non-empty string")
        if role not in ROLES:
            raise KeySetError(f"{where}.role: expected one of {ROLES}, got {role!r}")
        digest = decode_hex(entry.get("sha256"), 32, f"{where}.sha256")
        tokens.append(OperatorToken(name=name, role=role, sha256=digest))
    return tuple(tokens)
