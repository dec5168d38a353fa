"""The bundle and batch-signing vectors of docs/protocol.md §8, read from the page.

The page is what a terminal vendor checks against, so the test reads it rather than a
copy: the bundle's key, payload and signature (§8.1), and the upload's body, string to
sign and X-Signature (§8.4). The service's own encoder and signature check, and the
simulator's terminal code, are each held to those bytes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminals_sim.offline_bundle import (
    BundleRefused,
    OfflineBundle,
    load_bundle_keys,
    open_bundle,
)
from terminals_sim.signing import sign_headers
from validator.credentials.trust import TrustList
from validator.keyset import KeySet
from validator.offline import signing
from validator.offline.bundle import encode
from validator.offline.content import SECTIONS
from validator.policy.model import Terminal
from validator.web.exceptions import ApiError
from validator.web.terminal.auth import TerminalAuth, terminal_string_to_sign

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text("utf-8")
BUNDLE = PAGE.split("**Bundle vector.**", 1)[1].split("### 8.2", 1)[0]
BATCH = PAGE.split("**Signing vector.**", 1)[1]
HEADER_KEYS = ("v", "seq", "iat", "exp", "salt")


def _table(section: str) -> dict[str, str]:
    return dict(re.findall(r"^\| ([^|]+?) \| `([^`]+)` \|$", section, re.M))


def _hex_block(section: str, label: str) -> bytes:
    """The indented hex lines that follow `label` in the page."""
    block = section.split(f"    {label}", 1)[1].split(":\n", 1)[1].split("\n\n", 1)[0]
    return bytes.fromhex("".join(block.split()))


BUNDLE_INPUTS = _table(BUNDLE)
PAYLOAD = _hex_block(BUNDLE, "payload")
SIGNATURE = _hex_block(BUNDLE, "signature over")
JWK = json.loads(" ".join(re.search(  # type: ignore[union-attr]
    r"that key is `(\{.*?\})`", BUNDLE, re.S).group(1).split()))
BATCH_INPUTS = _table(BATCH)
BODY = re.search(r"^    (\{\"records\".*)$", BATCH, re.M).group(1).encode()  # type: ignore[union-attr]
STRING_TO_SIGN = "\n".join(line.removeprefix("    ") for line in BATCH.split(
    "no newline at the end:\n\n", 1)[1].split("\n\n", 1)[0].splitlines()).encode()
TERMINAL = "T-BUS-K1-001"
TIMESTAMP = "1795000000"


def _key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        bytes.fromhex(BUNDLE_INPUTS["Ed25519 private seed (TEST ONLY)"]))


def _cose() -> bytes:
    """The documented COSE_Sign1: tag 18, [protected, {}, payload, signature]."""
    protected = bytes.fromhex(BUNDLE_INPUTS["protected header `{1: -8, 4: kid}`"])
    return cbor2.dumps(cbor2.CBORTag(18, [protected, {}, PAYLOAD, SIGNATURE]))


def test_the_bundle_key_and_header_are_the_documented_bytes() -> None:
    public = _key().public_key()
    kid = signing.key_id(public)
    assert signing.public_jwk(public) == JWK
    assert kid.hex() == BUNDLE_INPUTS["`kid` = SHA-256(x)[0:8]"]
    assert JWK["x"] == _b64url(BUNDLE_INPUTS["public key `x`"])
    assert cbor2.dumps({1: -8, 4: kid}).hex() == \
        BUNDLE_INPUTS["protected header `{1: -8, 4: kid}`"]
    assert _cose()[:4].hex() == "d2844da2" and len(PAYLOAD) == 362


def test_the_service_encodes_and_signs_the_documented_bundle() -> None:
    payload: dict[str, Any] = cbor2.loads(PAYLOAD)
    fixed = {k: v for k, v in payload.items() if k not in HEADER_KEYS + SECTIONS}
    lists = {(section, index): value
             for section in SECTIONS for index, value in payload[section]}
    body = encode(_key(), seq=payload["seq"], iat=payload["iat"], exp=payload["exp"],
                  salt=payload["salt"], fixed=fixed, lists=lists)
    assert gzip.decompress(body) == _cose()


def test_the_reference_terminal_opens_the_documented_bundle(tmp_path: Path) -> None:
    (tmp_path / "bundle-public.json").write_text(json.dumps({"keys": [JWK]}), "utf-8")
    keys = load_bundle_keys(tmp_path)
    bundle = OfflineBundle()
    bundle.apply(open_bundle(gzip.compress(_cose()), keys))
    ref = bytes.fromhex("00112233445566778899aabbccddeeff")  # §8.2's holder
    assert bundle.seq == 1795000000000 and bundle.card_block_until("A12345678")[0]
    assert [c["code"] for c in bundle.categories(ref)] == ["disabled", "veteran"]
    tampered = bytearray(_cose())
    tampered[-70] ^= 1  # a byte of the payload, not of the signature
    with pytest.raises(BundleRefused) as refused:
        open_bundle(gzip.compress(bytes(tampered)), keys)
    assert refused.value.reason == "bad_signature"


def test_the_upload_signature_is_the_documented_one() -> None:
    digest = hashlib.sha256(BODY).hexdigest()
    assert len(BODY) == 211 and digest == BATCH_INPUTS["hex(SHA-256(body))"]
    assert terminal_string_to_sign("POST", "/v1/validations:batch", TIMESTAMP,
                                   digest) == STRING_TO_SIGN
    secret = bytes.fromhex(BATCH_INPUTS["terminal secret (TEST ONLY)"])
    headers = sign_headers(TERMINAL, secret, "POST", "/v1/validations:batch", BODY,
                           int(TIMESTAMP))
    assert headers["X-Signature"] == BATCH_INPUTS["X-Signature"]


def test_the_service_accepts_the_documented_signature_and_no_other() -> None:
    secret = bytes.fromhex(BATCH_INPUTS["terminal secret (TEST ONLY)"])
    terminal = Terminal(id=TERMINAL, kind="bus", venue="bus:K1", operator="OP-BUS-CITY")
    keys = KeySet(trust_list=TrustList([]), card_master_keys={}, pepper=bytes(32),
                  terminal_secrets={TERMINAL: secret}, operator_tokens=())
    auth = TerminalAuth({TERMINAL: terminal}, keys)
    digest = hashlib.sha256(BODY).hexdigest()
    signature = BATCH_INPUTS["X-Signature"]
    assert auth.authenticate(TERMINAL, TIMESTAMP, signature, "POST",
                             "/v1/validations:batch", digest, now=1795000000) == terminal
    wrong = ("1" if signature[0] == "0" else "0") + signature[1:]
    with pytest.raises(ApiError) as refused:
        auth.authenticate(TERMINAL, TIMESTAMP, wrong, "POST", "/v1/validations:batch",
                          digest, now=1795000000)
    assert refused.value.status == 401


def _b64url(hex_text: str) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(hex_text)).rstrip(b"=").decode()
