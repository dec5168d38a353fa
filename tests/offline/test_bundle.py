"""`GET /v1/terminal/bundle`: signed, fresh, private, and refused by a terminal when bad."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import cbor2
import pytest

from terminals_sim.offline_bundle import BundleRefused, OfflineBundle, load_bundle_keys, open_bundle
from tests.offline.client import get_bundle
from tests.web.conftest import serving
from tests.web.harness import CONFIG_DIR, Service
from validator.keyset import BUNDLE_KEY, BUNDLE_PUBLIC
from validator.policy.types import Category
from validator.settings import Settings
from validator.state.store import Block

GATE = "T-GATE-S01-01"


async def test_full_bundle_verifies_and_holds_what_a_decision_needs(service: Service) -> None:
    holder = service.holder(dt.date(1980, 1, 1))
    await service.store.put_holders([(holder.ref, (Category("disabled", 2),))])
    await service.store.put_block("card", "B12345678", Block("lost"))
    status, body, headers = await get_bundle(service, GATE)
    assert status == 200 and headers["X-Bundle-Kind"] == "full"
    payload = open_bundle(body, load_bundle_keys(service.keys_dir))
    assert payload["seq"] == int(headers["X-Bundle-Seq"])
    assert payload["exp"] - payload["iat"] == 86400
    assert payload["terminals"][GATE] == "spot:S01"
    bundle = OfflineBundle()
    bundle.apply(payload)
    assert bundle.categories(bytes.fromhex(holder.ref)) == [
        {"code": "disabled", "grade": 2, "until": None}]
    assert bundle.card_block_until("B12345678") == (True, None)
    assert bundle.card_block_until("B00000000") == (False, None)


async def test_nothing_in_a_bundle_names_a_holder_or_a_card(service: Service) -> None:
    holder = service.holder(dt.date(1950, 1, 1))
    await service.store.put_holders([(holder.ref, (Category("disabled", 1),))])
    await service.store.put_block("holder", holder.ref, Block("fraud"))
    await service.store.put_block("card", holder.card.card_no, Block("lost"))
    _, body, _ = await get_bundle(service, GATE)
    raw = gzip.decompress(body)
    for secret in (holder.ref.encode(), bytes.fromhex(holder.ref),
                   holder.card.card_no.encode(), holder.ssn.encode()):
        assert secret not in raw
    payload = cbor2.loads(cbor2.loads(raw).value[2])
    lists = cbor2.dumps([payload[s] for s in ("blocked_cards", "blocked_holders",
                                              "eligibility")])
    assert b"disabled" not in lists and b"fraud" not in lists


async def test_a_delta_carries_only_what_changed(service: Service) -> None:
    status, body, headers = await get_bundle(service, GATE)
    keys = load_bundle_keys(service.keys_dir)
    bundle = OfflineBundle()
    bundle.apply(open_bundle(body, keys))
    await service.store.put_block("card", "C00000001", Block("lost"))
    service.clock.advance(61)
    status, body, headers = await get_bundle(service, GATE, since=bundle.seq)
    assert status == 200 and headers["X-Bundle-Kind"] == "delta"
    payload = open_bundle(body, keys)
    assert payload["base"] == bundle.seq and len(payload["blocked_cards"]) == 1
    bundle.apply(payload)
    assert bundle.card_block_until("C00000001")[0]
    with pytest.raises(BundleRefused) as older:
        bundle.apply(payload)
    assert older.value.reason == "older_sequence"


async def test_a_terminal_refuses_a_bad_signature(service: Service) -> None:
    _, body, _ = await get_bundle(service, GATE)
    signed = bytearray(gzip.decompress(body))
    signed[-1] ^= 1
    with pytest.raises(BundleRefused) as refused:
        open_bundle(gzip.compress(bytes(signed)), load_bundle_keys(service.keys_dir))
    assert refused.value.reason == "bad_signature"
    with pytest.raises(BundleRefused) as garbage:
        open_bundle(b"not a bundle", load_bundle_keys(service.keys_dir))
    assert garbage.value.reason == "malformed"


@pytest.mark.parametrize("query", ["abc", "-1", "1" * 17])
async def test_a_bad_since_is_400(service: Service, query: str) -> None:
    status, body, _ = await get_bundle_raw(service, query)
    assert status == 400 and json.loads(body)["error"] == "invalid_request"


async def get_bundle_raw(service: Service, since: str) -> tuple[int, bytes, dict[str, str]]:
    from terminals_sim.signing import sign_headers
    path = "/v1/terminal/bundle"
    headers = sign_headers(GATE, service.secrets[GATE], "GET", path, b"",
                           int(service.clock.now()))
    async with service.session.get(service.url + path, params={"since": since},
                                   headers=headers) as resp:
        return resp.status, await resp.read(), dict(resp.headers)


async def test_a_bad_terminal_signature_is_401(service: Service) -> None:
    status, body, _ = await get_bundle(service, GATE, secret=b"\0" * 32)
    assert status == 401 and json.loads(body)["error"] == "unauthorized"


async def test_a_key_set_without_a_bundle_key_serves_no_bundle(keys_dir: Path) -> None:
    (keys_dir / BUNDLE_KEY).unlink()
    (keys_dir / BUNDLE_PUBLIC).unlink()
    async with serving(Settings(config_dir=CONFIG_DIR, keys_dir=keys_dir)) as service:
        status, body, _ = await get_bundle(service, GATE)
    assert status == 404
    assert json.loads(body) == {"error": "offline_disabled", "detail":
                                "offline terminals are not enabled: no key set bundle-key.pem"}


async def test_a_terminal_already_up_to_date_gets_an_empty_delta_and_keeps_its_bundle(
        service: Service) -> None:
    keys = load_bundle_keys(service.keys_dir)
    _, body, _ = await get_bundle(service, GATE)
    bundle = OfflineBundle()
    bundle.apply(open_bundle(body, keys))
    held = bundle.seq
    status, body, headers = await get_bundle(service, GATE, since=held)
    payload = open_bundle(body, keys)
    assert status == 200 and headers["X-Bundle-Kind"] == "delta"
    assert payload["base"] == payload["seq"] == held
    assert not any(payload[s] for s in ("blocked_cards", "blocked_holders", "eligibility"))
    bundle.apply(payload)  # "nothing new": not refused as an older sequence
    assert bundle.seq == held
    # The next refresh's delta still applies on top of it.
    await service.store.put_block("card", "C00000002", Block("lost"))
    service.clock.advance(61)
    _, body, _ = await get_bundle(service, GATE, since=held)
    bundle.apply(open_bundle(body, keys))
    assert bundle.seq > held and bundle.card_block_until("C00000002")[0]


def test_an_up_to_date_delta_that_carries_entries_is_refused() -> None:
    bundle = OfflineBundle(seq=5, exp=10, salt=b"s" * 16)
    payload = {"v": 1, "seq": 5, "base": 5, "exp": 10, "salt": b"s" * 16,
               "blocked_cards": [[b"\0" * 8, 0]], "blocked_holders": [], "eligibility": [],
               "removed": {}}
    with pytest.raises(BundleRefused) as refused:
        bundle.apply(payload)
    assert refused.value.reason == "malformed" and not bundle.lists["blocked_cards"]
