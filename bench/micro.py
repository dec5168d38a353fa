"""Micro-benchmarks of the verification steps, beside the raw cost of the primitives.

    python -m bench.micro [--keys DIR] [--redis redis://127.0.0.1:PORT/0] [--out FILE]

Each figure is µs per call, the best of 5 runs (the minimum is the least noisy estimate
of what the code costs; the mean mostly measures the machine's other load). Without
`--keys` a throw-away key set is generated; without `--redis` the store rows are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import hmac
import itertools
import json
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.signing
from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers import algorithms
from tongsuopy.crypto import hashes as ts_hashes
from tongsuopy.crypto.asymciphers import ec as ts_ec

from bench import creds
from bench.gcwalk import gc_rows, sm2_rows
from bench.pipeline import pipeline_rows, store_rows
from validator.credentials import cose, sm2
from validator.credentials.essc_qr import EsscVerifier, parse_level1, parse_level2
from validator.credentials.ssc_card import CardTap, CardVerifier
from validator.keygen import init_keyset
from validator.keyset import load_keyset

CONFIG = Path(__file__).resolve().parents[1] / "config"

Row = dict[str, Any]  # {"name", "us", "note"}
SM2_SM3 = ts_ec.ECDSA(ts_hashes.SM3())  # tongsuopy's "SM2 signature with SM3"


def best_us(func: Callable[[], object], number: int) -> float:
    """Best of 5 runs of `number` calls, in µs per call."""
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6


def row(name: str, us: float, note: str = "") -> Row:
    return {"name": name, "us": round(us, 2), "note": note}


def primitive_rows() -> list[Row]:
    """The physical floor: one verify with `cryptography` (OpenSSL) and, for Ed25519, with
    libsodium (PyNaCl, what the validator uses), and the symmetric MACs."""
    data = b"x" * 200  # about a Sig_structure's size
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_sig, ec_pub = ec_key.sign(data, ec.ECDSA(hashes.SHA256())), ec_key.public_key()
    ed_key = Ed25519PrivateKey.generate()
    ed_sig, ed_pub = ed_key.sign(data), ed_key.public_key()
    ed_sodium = nacl.signing.VerifyKey(ed_pub.public_bytes_raw())
    sm2_key = sm2.generate_private_key()
    sm2_sig, sm2_pub = sm2_key.sign(data, SM2_SM3), sm2_key.public_key()
    sm4_key, hmac_key, message = bytes(16), bytes(32), b"m" * 114  # len(M) of §3

    def sm4_cmac() -> bytes:
        mac = cmac.CMAC(algorithms.SM4(sm4_key))
        mac.update(message)
        return mac.finalize()

    return [
        row("raw ES256 verify (cryptography)", best_us(
            lambda: ec_pub.verify(ec_sig, data, ec.ECDSA(hashes.SHA256())), 2000)),
        row("raw Ed25519 verify (cryptography)",
            best_us(lambda: ed_pub.verify(ed_sig, data), 2000)),
        row("raw Ed25519 verify (libsodium)",
            best_us(lambda: ed_sodium.verify(data, ed_sig), 2000), "PyNaCl VerifyKey"),
        row("raw SM2 verify (Tongsuo)", best_us(
            lambda: sm2_pub.verify(sm2_sig, data, SM2_SM3), 1000),
            "tongsuopy; Z_A with the default ID, DER signature"),
        row("raw SM4-CMAC, new context", best_us(sm4_cmac, 20000)),
        row("raw HMAC-SHA256 (terminal auth)", best_us(
            lambda: hmac.new(hmac_key, message, hashlib.sha256).digest(), 20000)),
    ]


def qr_rows(keys_dir: Path, now: int) -> list[Row]:
    rows = []
    combos: tuple[tuple[creds.Alg, creds.Alg], ...] = (
        ("ES256", "ES256"), ("ES256", "EdDSA"), ("ES256", "SM2"), ("EdDSA", "EdDSA"),
        ("SM2", "SM2"))
    for issuer_alg, device_alg in combos:
        rows += _qr_rows(keys_dir, now, issuer_alg, device_alg)
    return rows


def _qr_rows(keys_dir: Path, now: int, issuer_alg: creds.Alg, device_alg: creds.Alg
             ) -> list[Row]:
    """Decode and each signature apart, then the whole verify with and without the cache."""
    trust = load_keyset(keys_dir).trust_list
    qr = creds.qr_codes(keys_dir, 1, now, device_alg=device_alg, issuer_alg=issuer_alg)[0]["qr"]
    outer = parse_level2(qr)
    inner = parse_level1(outer.inner)
    level1 = cose.sig_structure1(inner.sign1.protected_raw, inner.sign1.payload)
    level2 = cose.sig_structure1(outer.sign1.protected_raw, outer.sign1.payload)
    issuer_key = trust.candidates(inner.kid, inner.alg, now)[0]
    device_key = inner.credential.device_key
    warm, cold = EsscVerifier(trust), EsscVerifier(trust, level1_cache_size=0)
    warm.verify(qr, now)

    def decode() -> object:
        return parse_level1(parse_level2(qr).inner)

    def level1_signature() -> bool:
        return issuer_key.verify(inner.sign1.signature, level1)

    def level2_signature() -> bool:
        return cose.verify_signature(device_key, outer.alg, outer.sign1.signature, level2)

    rows = []
    if (issuer_alg, device_alg) == ("ES256", "ES256"):
        rows.append(row("QR decode: Base45 + CBOR, both levels", best_us(decode, 5000),
                        f"{len(qr)} chars"))
    if issuer_alg == device_alg:
        rows.append(row(f"QR level-1 signature ({issuer_alg} issuer)",
                        best_us(level1_signature, 2000)))
    label = f"issuer {issuer_alg}, device {device_alg}"
    if issuer_alg == "ES256":  # the device's alg is what varies from scan to scan
        rows.append(row(f"QR level-2 signature ({device_alg} device)",
                        best_us(level2_signature, 2000)))
    if issuer_alg == "ES256" or issuer_alg == device_alg == "SM2":
        who = "all-SM2" if issuer_alg == "SM2" else f"{device_alg} device"
        rows += [
            row(f"EsscVerifier.verify, level 1 cached ({who})",
                best_us(lambda: warm.verify(qr, now), 2000), label),
            row(f"EsscVerifier.verify, no cache ({who})",
                best_us(lambda: cold.verify(qr, now), 1000), label),
        ]
    return rows


def card_rows(keys_dir: Path, now: int) -> list[Row]:
    keyset = load_keyset(keys_dir)
    tap = {k: v for k, v in creds.card_taps(keys_dir, 1, now)[0].items() if k != "type"}
    card = CardTap(**tap)
    today = dt.date.fromtimestamp(now)
    warm = CardVerifier(keyset.card_master_keys, keyset.pepper)
    cold = CardVerifier(keyset.card_master_keys, keyset.pepper, card_key_cache_size=0)
    return [
        row("card cryptogram verify, card key cached", best_us(
            lambda: warm.verify(card, creds.TERMINAL, now, today), 10000),
            "field checks, SM4-CMAC, holder_ref (HMAC-SM3)"),
        row("card cryptogram verify, no cache", best_us(
            lambda: cold.verify(card, creds.TERMINAL, now, today), 5000),
            "+ key diversification (SM3, SM4)"),
    ]


def cache_rows() -> list[Row]:
    """A new card's tap puts into two full LRUs (card key, holder_ref): the steady state
    of a city with more cards than the caches hold, after 200,000 new keys."""
    from validator.lru import Lru

    cache: Lru[str, bytes] = Lru(65_536)
    serial = itertools.count()

    def put_new() -> None:
        cache.put(f"card-{next(serial)}", b"key")

    for _ in range(200_000):
        put_new()
    return [row("LRU put of a new key, full cache of 65,536", best_us(put_new, 100_000),
                "evicting; twice per new card's tap")]


def policy_rows() -> list[Row]:
    from validator.config_folder import load_config
    from validator.policy.types import PolicyInput

    engine = load_config(CONFIG).engine
    at = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)
    senior = PolicyInput(venue="bus:K1", at=at, birth_date=dt.date(1950, 6, 1), resident=True)
    visitor = PolicyInput(venue="spot:S01", at=at, birth_date=dt.date(1990, 6, 1))
    return [
        row("policy evaluate (bus, senior)", best_us(lambda: engine.evaluate(senior), 20000)),
        row("policy evaluate (spot, visitor)", best_us(lambda: engine.evaluate(visitor), 20000)),
    ]


def run(keys_dir: Path, redis_url: str | None) -> list[Row]:
    now = int(time.time())
    rows = primitive_rows() + qr_rows(keys_dir, now) + card_rows(keys_dir, now) + cache_rows()
    rows += policy_rows() + gc_rows() + sm2_rows()
    rows += asyncio.run(pipeline_rows(keys_dir, CONFIG, redis_url))
    if redis_url is not None:
        rows += asyncio.run(store_rows(redis_url))
    return rows


def render(rows: list[Row]) -> str:
    width = max(len(r["name"]) for r in rows)
    lines = [f"{'micro-benchmark':{width}}  {'µs/call':>9}  note", "-" * (width + 30)]
    lines += [f"{r['name']:{width}}  {r['us']:9.1f}  {r['note']}" for r in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=Path, help="key set (default: a new one in a temp dir)")
    p.add_argument("--redis", help="redis://HOST:PORT/DB for the store rows (it is flushed)")
    p.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-keys-") as tmp:
        keys_dir = args.keys
        if keys_dir is None:
            keys_dir = Path(tmp) / "keys"
            init_keyset(keys_dir, region=creds.REGION, terminal_ids=[creds.TERMINAL])
        rows = run(keys_dir, args.redis)
    print(render(rows))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
