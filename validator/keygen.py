"""Writing key sets (protocol §6, §7 `keys init`) and rotating card master keys.

Dev and test sets only: production issuer private keys live with the e-card platform,
and production card master keys in an HSM export; the validator only ever reads them.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from validator.credentials import sm2
from validator.credentials.trust import b64url, public_jwk
from validator.keyset import (
    BUNDLE_KEY,
    BUNDLE_PUBLIC,
    CARD_MASTER_KEYS,
    ISSUERS_DIR,
    OPERATOR_TOKENS,
    PEPPER,
    TERMINAL_SECRETS,
    TRUST_LIST,
    KeySetError,
)
from validator.offline import signing


def init_keyset(directory: Path, *, region: str, terminal_ids: Iterable[str]) -> dict[str, str]:
    """Write a complete new key set; answer {token name: plaintext} to print once.

    Refuses to touch a folder that already holds any key-set file.
    """
    existing = [n for n in (TRUST_LIST, CARD_MASTER_KEYS, PEPPER, TERMINAL_SECRETS,
                            OPERATOR_TOKENS, ISSUERS_DIR, BUNDLE_KEY)
                if (directory / n).exists()]
    if existing:
        raise KeySetError(f"{directory}: already holds a key set ({', '.join(existing)}); "
                          "refusing to overwrite it")
    (directory / ISSUERS_DIR).mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)

    iss = f"CN-{region}-ESSC"
    jwks = [
        _write_issuer(directory, ec.generate_private_key(ec.SECP256R1()), "ES256", iss),
        _write_issuer(directory, ed25519.Ed25519PrivateKey.generate(), "EdDSA", iss),
        _write_sm2_issuer(directory, iss),
    ]
    _write_json(directory / TRUST_LIST, {"keys": jwks})
    _write_json(directory / CARD_MASTER_KEYS,
                {"keys": [{"region": region, "kv": 1, "key": secrets.token_hex(16)}]})
    _write_secret(directory / PEPPER, secrets.token_hex(32) + "\n")
    _write_json(directory / TERMINAL_SECRETS, {t: secrets.token_hex(32) for t in terminal_ids})
    add_bundle_key(directory)

    tokens = {"admin": secrets.token_urlsafe(32), "viewer": secrets.token_urlsafe(32)}
    _write_json(directory / OPERATOR_TOKENS, {"tokens": [
        {"name": name, "role": name, "sha256": hashlib.sha256(tok.encode()).hexdigest()}
        for name, tok in tokens.items()
    ]})
    return tokens


def add_card_master_key(directory: Path, *, region: str, kv: int) -> None:
    """Add a new (region, kv) master key beside the existing ones (key rotation)."""
    path = directory / CARD_MASTER_KEYS
    doc = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"keys": []}
    if any(k.get("region") == region and k.get("kv") == kv for k in doc["keys"]):
        raise KeySetError(f"{path}: region {region} kv {kv} exists already; never overwrite "
                          "a card master key, add a new version")
    if not 1 <= kv <= 255:
        raise KeySetError(f"kv must be 1-255, got {kv}")
    doc["keys"].append({"region": region, "kv": kv, "key": secrets.token_hex(16)})
    _write_json(path, doc)


def add_bundle_key(directory: Path) -> None:
    """Write the offline bundle signing key and its public JWK (a key set made before
    offline terminals existed gets one this way; it never replaces an existing one)."""
    if (directory / BUNDLE_KEY).exists():
        raise KeySetError(f"{directory / BUNDLE_KEY}: exists already; refusing to replace it")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    _write_secret(directory / BUNDLE_KEY, pem.decode())
    _write_json(directory / BUNDLE_PUBLIC, {"keys": [signing.public_jwk(key.public_key())]})


def _write_issuer(
    directory: Path,
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
    alg: str,
    iss: str,
) -> dict[str, object]:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return _write_issuer_pem(directory, pem, key.public_key(), alg, iss)


def _write_sm2_issuer(directory: Path, iss: str) -> dict[str, object]:
    """An SM2 issuer (§2.1): `cryptography` refuses the curve, so the SM2 library writes it."""
    key = sm2.generate_private_key()
    return _write_issuer_pem(directory, sm2.private_key_pem(key), key.public_key(), "SM2SM3",
                             iss)


def _write_issuer_pem(directory: Path, pem: bytes, public_key: object, alg: str,
                      iss: str) -> dict[str, object]:
    kid = secrets.token_bytes(8)
    name = b64url(kid)
    _write_secret(directory / ISSUERS_DIR / f"{name}.pem", pem.decode())
    return public_jwk(public_key, kid, alg, iss)


def _write_json(path: Path, doc: object) -> None:
    _write_secret(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def _write_secret(path: Path, text: str) -> None:
    """Write atomically with owner-only permissions (secrets never world-readable)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)
