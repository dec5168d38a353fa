"""After a run of taps and scans, no raw SSN (nor birth date, nor token) is anywhere:
not in a Redis key or value, not in a ledger or audit entry, not in a log line."""

from __future__ import annotations

import logging

import pytest
import redis

from tests.web.harness import Service, age_birth
from validator.policy.types import Category
from validator.state import keys
from validator.state.store import Block
from validator.web.dashboard.redact import mask_card

TERMINALS = ["T-BUS-K1-001", "T-BUS-S101-001", "T-GATE-S03-01", "T-GATE-S12-02"]


def _dump(url: str) -> list[bytes]:
    """Every key, and every value of every type, as raw bytes."""
    client = redis.Redis.from_url(url)
    out: list[bytes] = []
    try:
        for key in client.scan_iter(count=1000):
            out.append(key)
            kind = client.type(key)
            if kind == b"string":
                out.append(client.get(key) or b"")
            elif kind == b"stream":
                for _, fields in client.xrange(key):
                    out.extend(v for kv in fields.items() for v in kv)
            elif kind == b"hash":
                out.extend(v for kv in client.hgetall(key).items() for v in kv)
            elif kind in (b"set", b"list", b"zset"):
                out.append(repr(client.dump(key)).encode())
    finally:
        client.close()
    return out


@pytest.mark.parametrize("service", ["redis"], indirect=True)
async def test_no_ssn_reaches_redis_ledger_or_logs(
    service: Service, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    holders = [service.holder(age_birth(a)) for a in (8, 30, 61, 66, 72, 90)]
    await service.store.put_holders([(holders[0].ref, (Category("disabled", grade=1),))])
    await service.store.put_block("card", holders[1].card.card_no, Block(reason="lost"))
    for i, holder in enumerate(holders):
        for terminal in TERMINALS:
            await service.tap(terminal, holder)
            await service.validate(terminal, holder.qr(service.clock.now()))
            if i == 0:
                await service.tap(terminal, holder, companion=True)
        service.clock.advance(7)
    # a tap with a tampered cryptogram and one with a bad SSN check character
    bad = dict(holders[2].card.tap(TERMINALS[0], int(service.clock.now()), "0A1B2C3D"))
    bad["cryptogram"] = "0" * 16
    await service.validate(TERMINALS[0], bad)
    bad["ssn"] = holders[2].ssn[:-1] + ("1" if holders[2].ssn[-1] != "1" else "2")
    await service.validate(TERMINALS[0], bad)

    await service.live_feed.tick()  # publishes the board, with the fraud feed
    assert service.live_feed.leading
    board = redis.Redis.from_url(redis_url).get(keys.FEED_BOARD)
    assert isinstance(board, bytes)  # the blocked card's taps are on its fraud feed, masked:
    assert str(mask_card(holders[1].card.card_no)).encode() in board
    for holder in holders:  # the shared board shows card numbers masked, refs shortened
        assert holder.card.card_no.encode() not in board and holder.ref.encode() not in board

    stored = _dump(redis_url)
    # The dump did see the ledger and the state: pseudonyms and card numbers are there.
    assert any(b"ledger" in item for item in stored)
    assert any(holders[3].ref.encode() in item for item in stored if b'"txn_id"' in item)
    assert any(holders[1].card.card_no.encode() in item for item in stored)
    forbidden = [h.ssn.encode() for h in holders] + [bad["ssn"].encode()]
    forbidden += [h.birth.strftime("%Y%m%d").encode() for h in holders]
    for item in stored:
        for secret in forbidden:
            assert secret not in item, (secret, item[:200])
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in forbidden:
        assert secret.decode() not in logged
