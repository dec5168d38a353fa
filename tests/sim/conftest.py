"""Fixtures for the simulator's tests: a key set written here, without the validator.

The simulator plays the other side of the wire, so its unit tests build their own §6
key set (one ES256 and one EdDSA issuer, the city's card master key, a pepper, a
secret per terminal) instead of asking the validator to make one; `sm2_keys` adds an
SM2 issuer (protocol §2.1), its PEM written by Tongsuo's SDK.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tongsuopy.crypto import serialization as ts_serialization
from tongsuopy.crypto.asymciphers import ec as ts_ec

from terminals_sim.cityconf import CityConfig, load_city_config
from terminals_sim.keyset import SimKeys, load_sim_keys

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def write_keyset(folder: Path, terminal_ids: list[str], *, sm2: bool = False) -> Path:
    """A dev-style key set in the layout of protocol §6 (with an SM2 issuer if `sm2`)."""
    (folder / "issuers").mkdir(parents=True)
    jwks = [_sm2_issuer(folder)] if sm2 else []
    for key in (ec.generate_private_key(ec.SECP256R1()), Ed25519PrivateKey.generate()):
        kid = _b64url(os.urandom(8))
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        (folder / "issuers" / f"{kid}.pem").write_bytes(pem)
        if isinstance(key, Ed25519PrivateKey):
            raw = key.public_key().public_bytes_raw()
            jwks.append({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA",
                         "iss": "CN-369900-ESSC", "x": _b64url(raw)})
        else:
            nums = key.public_key().public_numbers()
            jwks.append({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
                         "iss": "CN-369900-ESSC", "x": _b64url(nums.x.to_bytes(32, "big")),
                         "y": _b64url(nums.y.to_bytes(32, "big"))})
    (folder / "trust-list.json").write_text(json.dumps({"keys": jwks}))
    (folder / "card-master-keys.json").write_text(json.dumps(
        {"keys": [{"region": "369900", "kv": 1, "key": os.urandom(16).hex()}]}))
    (folder / "holder-pepper.hex").write_text(os.urandom(32).hex())
    (folder / "terminal-secrets.json").write_text(json.dumps(
        {t: os.urandom(32).hex() for t in terminal_ids}))
    return folder


def _sm2_issuer(folder: Path) -> dict[str, str]:
    key = ts_ec.generate_private_key(ts_ec.SM2())
    kid = _b64url(os.urandom(8))
    (folder / "issuers" / f"{kid}.pem").write_bytes(key.private_bytes(
        ts_serialization.Encoding.PEM, ts_serialization.PrivateFormat.PKCS8,
        ts_serialization.NoEncryption()))
    nums = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "SM2", "kid": kid, "alg": "SM2SM3", "iss": "CN-369900-ESSC",
            "x": _b64url(nums.x.to_bytes(32, "big")), "y": _b64url(nums.y.to_bytes(32, "big"))}


@pytest.fixture(scope="session")
def city() -> CityConfig:
    return load_city_config(CONFIG_DIR)


@pytest.fixture(scope="session")
def keyset_dir(tmp_path_factory: pytest.TempPathFactory, city: CityConfig) -> Path:
    return write_keyset(tmp_path_factory.mktemp("keys") / "set", [t.id for t in city.terminals])


@pytest.fixture(scope="session")
def keys(keyset_dir: Path) -> SimKeys:
    return load_sim_keys(keyset_dir)


@pytest.fixture(scope="session")
def sm2_keyset_dir(tmp_path_factory: pytest.TempPathFactory, city: CityConfig) -> Path:
    return write_keyset(tmp_path_factory.mktemp("keys") / "set",
                        [t.id for t in city.terminals], sm2=True)


@pytest.fixture(scope="session")
def sm2_keys(sm2_keyset_dir: Path) -> SimKeys:
    return load_sim_keys(sm2_keyset_dir)
