"""The command line of protocol §7, run as a real subprocess, as deployments script it."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from terminals_sim.card import Card, card_id_for, make_ssn
from terminals_sim.ecard import Issuer, Phone, generate_key
from terminals_sim.terminal import TerminalClient
from tests.web.harness import CONFIG_DIR, ROOT
from validator.holders.ref import holder_ref
from validator.state.redis import RedisStore


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "validator", *args], cwd=ROOT, text=True,
                          capture_output=True, check=check, timeout=60)


def test_keys_init_writes_the_layout_prints_tokens_once_and_refuses_to_overwrite(
    tmp_path: Path,
) -> None:
    target = tmp_path / "set"
    out = run_cli("keys", "init", str(target), "--config", str(CONFIG_DIR)).stdout
    names = sorted(p.name for p in target.iterdir())
    assert names == ["bundle-key.pem", "bundle-public.json", "card-master-keys.json",
                     "holder-pepper.hex", "issuers", "operator-tokens.json",
                     "terminal-secrets.json", "trust-list.json"]
    assert len(list((target / "issuers").glob("*.pem"))) == 3  # ES256, EdDSA, SM2 (§7)
    tokens = json.loads((target / "operator-tokens.json").read_text())["tokens"]
    assert sorted(t["role"] for t in tokens) == ["admin", "viewer"]
    for token in tokens:
        assert token["sha256"] not in out  # the plaintext is printed, never its hash file
    assert "admin: " in out and "viewer: " in out
    again = run_cli("keys", "init", str(target), "--config", str(CONFIG_DIR), check=False)
    assert again.returncode == 2
    assert "refusing to overwrite" in again.stderr


def test_add_card_key_version_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "set"
    run_cli("keys", "init", str(target), "--config", str(CONFIG_DIR))
    before = json.loads((target / "card-master-keys.json").read_text())["keys"]
    run_cli("keys", "add-card-key", str(target), "--region", "369900", "--kv", "2")
    after = json.loads((target / "card-master-keys.json").read_text())["keys"]
    assert after[0] == before[0]
    assert [(k["region"], k["kv"]) for k in after] == [("369900", 1), ("369900", 2)]
    dup = run_cli("keys", "add-card-key", str(target), "--region", "369900", "--kv", "2",
                  check=False)
    assert dup.returncode == 2


def test_serve_refuses_a_broken_key_set_naming_the_file(tmp_path: Path) -> None:
    target = tmp_path / "set"
    run_cli("keys", "init", str(target), "--config", str(CONFIG_DIR))
    (target / "holder-pepper.hex").write_text("abc\n")
    result = run_cli("serve", "--config", str(CONFIG_DIR), "--keys", str(target),
                     "--store", "memory", "--port", "0", check=False)
    assert result.returncode == 2
    assert "holder-pepper.hex" in result.stderr


def test_serve_names_an_option_out_of_range_without_a_traceback(tmp_path: Path) -> None:
    target = tmp_path / "set"
    run_cli("keys", "init", str(target), "--config", str(CONFIG_DIR))
    for option, value, said in (("--ledger-retention-days", "0", "greater than or equal to 1"),
                                ("--port", "70000", "less than or equal to 65535")):
        result = run_cli("serve", "--config", str(CONFIG_DIR), "--keys", str(target),
                         "--store", "memory", option, value, check=False)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"error: {option}: input should be {said}"), \
            result.stderr
        assert "Traceback" not in result.stderr


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _foreign_keyset(directory: Path) -> tuple[Issuer, dict[str, bytes], bytes, bytes]:
    """A key set written by hand from protocol §6, not by our command: two Ed25519
    issuer keys share one kid (the second one signs), a second card key version."""
    (directory / "issuers").mkdir(parents=True)
    kid = os.urandom(8)
    keys = [ed25519.Ed25519PrivateKey.generate() for _ in range(2)]
    jwks = []
    for i, key in enumerate(keys):
        raw = key.public_key().public_bytes_raw()
        jwks.append({"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), "kid": _b64(kid),
                     "alg": "EdDSA", "iss": "CN-369900-ESSC", "nbf": 1_700_000_000})
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        (directory / "issuers" / f"{_b64(kid)}-{i}.pem").write_bytes(pem)
    (directory / "trust-list.json").write_text(json.dumps({"keys": jwks}))
    master = os.urandom(16)
    (directory / "card-master-keys.json").write_text(json.dumps({"keys": [
        {"region": "369900", "kv": 1, "key": os.urandom(16).hex()},
        {"region": "369900", "kv": 7, "key": master.hex()}]}))
    pepper = os.urandom(32)
    (directory / "holder-pepper.hex").write_text(pepper.hex())
    secrets = {"T-BUS-K1-001": os.urandom(32)}
    (directory / "terminal-secrets.json").write_text(
        json.dumps({k: v.hex() for k, v in secrets.items()}))
    (directory / "operator-tokens.json").write_text(json.dumps({"tokens": []}))
    return Issuer(keys[1], kid, "CN-369900-ESSC", "EdDSA"), secrets, pepper, master


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path, redis_url: str) -> Iterator[tuple[str, Path]]:
    """`python -m validator serve` on a hand-written key set and a real Redis."""
    keys = tmp_path / "foreign"
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "validator", "serve", "--config", str(CONFIG_DIR),
         "--keys", str(keys), "--store", redis_url, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    ) if _foreign_keyset(keys) else None
    assert proc is not None
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "") from None
            time.sleep(0.1)
    try:
        yield url, keys
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def test_serve_accepts_a_hand_written_key_set(served: tuple[str, Path], redis_url: str) -> None:
    url, keys = served
    issuer = _foreign_keyset_issuer(keys)
    secrets = json.loads((keys / "terminal-secrets.json").read_text())
    secret = bytes.fromhex(secrets["T-BUS-K1-001"])
    pepper = bytes.fromhex((keys / "holder-pepper.hex").read_text())
    masters = json.loads((keys / "card-master-keys.json").read_text())["keys"]
    master = bytes.fromhex(masters[1]["key"])
    birth = dt.date(1950, 3, 1)
    ssn = make_ssn("369900", birth, 17)
    device = generate_key("EdDSA")
    now = int(time.time())
    level1 = issuer.issue(bytes.fromhex(holder_ref(pepper, ssn)), 19500301, "B12345678",
                          "369900", device.public_key(), iat=now - 60, exp=now + 3600)
    qr = Phone(level1, device, "EdDSA").qr(now)
    card = Card(region="369900", ssn=ssn, card_no="B12345678",
                card_id=card_id_for("369900", 99), issued="20240101", expires="20341231",
                kv=7, master_key=master)

    async def go() -> list[dict[str, object]]:
        async with aiohttp.ClientSession() as session:
            client = TerminalClient(session, url, "T-BUS-K1-001", secret)
            # The tap's cryptogram covers the second it is scanned at: the same `now`, or a
            # second boundary between the two makes it cryptogram_invalid (a flaky test).
            scanned = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()
            replies = [await client.post(client.body({"type": "essc_qr", "qr": qr}, scanned))]
            tap = card.tap("T-BUS-K1-001", now, "DEADBEEF")
            replies.append(await client.post(client.body(dict(tap), scanned)))
            return [r.body for r in replies]

    qr_reply, tap_reply = asyncio.run(go())
    assert (qr_reply["decision"], qr_reply["rule"]) == ("accept", "bus.senior_70"), qr_reply
    assert (tap_reply["decision"], tap_reply["rule"]) == ("accept", "bus.senior_70"), tap_reply


def _foreign_keyset_issuer(keys: Path) -> Issuer:
    pem = sorted((keys / "issuers").glob("*-1.pem"))[0]
    key = serialization.load_pem_private_key(pem.read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    kid = base64.urlsafe_b64decode(pem.name[:11] + "=")
    return Issuer(key, kid, "CN-369900-ESSC", "EdDSA")


def test_holders_load_and_blocks_against_redis(tmp_path: Path, redis_url: str) -> None:
    keys = tmp_path / "set"
    run_cli("keys", "init", str(keys), "--config", str(CONFIG_DIR))
    pepper = bytes.fromhex((keys / "holder-pepper.hex").read_text().strip())
    ssn = make_ssn("369900", dt.date(1980, 5, 17), 3)
    ref = "ab" * 16
    lines = [
        json.dumps({"ssn": ssn, "categories": [{"code": "disabled", "grade": 2}]}),
        "",
        json.dumps({"holder_ref": ref, "categories": [{"code": "veteran",
                                                       "until": "2027-12-31"}]}),
        json.dumps({"ssn": ssn[:-1] + ("0" if ssn[-1] != "0" else "1"), "categories": []}),
        json.dumps({"holder_ref": ref, "ssn": ssn, "categories": []}),
        json.dumps({"holder_ref": ref, "categories": [{"code": "disabled", "grade": 9}]}),
        "{not json",
    ]
    src = tmp_path / "holders.ndjson"
    src.write_text("\n".join(lines) + "\n")
    result = run_cli("holders", "load", str(src), "--keys", str(keys), "--store", redis_url,
                     check=False)
    assert result.returncode == 1  # some lines were rejected
    assert "created 2, updated 0, rejected 4, blank 1" in result.stdout
    assert [line.split(":")[0].strip() for line in result.stderr.splitlines()] == \
        ["line 4", "line 5", "line 6", "line 7"]
    assert ssn not in result.stdout + result.stderr

    async def check() -> None:
        store = RedisStore.from_url(redis_url)
        try:
            cats = await store.get_holder(holder_ref(pepper, ssn))
            assert cats is not None and cats[0].code == "disabled" and cats[0].grade == 2
            [(_, entry)] = await store.audit_read(10)
            assert json.loads(entry)["who"] == "cli"
            assert json.loads(entry)["new"] == {"created": 2, "updated": 0, "rejected": 4,
                                                "blank": 1}
        finally:
            await store.close()

    asyncio.run(check())
    added = run_cli("blocks", "add", "card", "A12345678", "--reason", "lost",
                    "--until", "2027-01-31", "--store", redis_url)
    assert "blocked" in added.stdout
    removed = run_cli("blocks", "remove", "card", "A12345678", "--store", redis_url)
    assert "unblocked" in removed.stdout
    missing = run_cli("blocks", "remove", "card", "A12345678", "--store", redis_url,
                      check=False)
    assert missing.returncode == 1
    memory = run_cli("blocks", "add", "card", "A12345678", "--store", "memory", check=False)
    assert memory.returncode == 2 and "redis://" in memory.stderr
