"""The live board on its own: records in, figures out; masking; day rollover."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import orjson
import pytest

from tests.dashboard.records import REF, deny, record
from tests.web.harness import CONFIG_DIR, WED_10
from validator.config_folder import Config, load_config
from validator.ledger.record import LedgerRecord
from validator.web.dashboard.board import (
    COALESCE_S,
    FEED_SIZE,
    MAX_UNREGISTERED,
    WINDOW_S,
    LiveBoard,
    yuan,
)
from validator.web.dashboard.redact import mask_card, short_ref

DAY = dt.date(2026, 12, 2)


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(CONFIG_DIR)


@pytest.fixture
def board(config: Config) -> LiveBoard:
    return LiveBoard(config.city, config.terminals, DAY, started_at=WED_10 - 60)


def test_masking_never_shows_a_whole_card_number() -> None:
    assert mask_card("A12345678") == "A12****78"
    assert mask_card("ABC") == "***"
    assert mask_card(None) is None
    assert short_ref(REF) == "01234567…"
    assert yuan(12345) == "123.45" and yuan(5) == "0.05" and yuan(-150) == "-1.50"


def test_totals_reasons_fares_and_money(board: LiveBoard) -> None:
    board.advance(WED_10)
    board.add(record())
    board.add(record(terminal="T-BUS-K1-002", fare_class="half", amount_fen=100,
                     rule="bus.disabled_half", rule_categories=("disabled",)))
    board.add(record(fare_class="full", amount_fen=200, rule="bus.standard", rule_categories=()))
    board.add(deny("qr_expired", credential="essc_qr"))
    board.add(deny("qr_expired"))
    board.add(deny("venue_closed"))
    snap = board.snapshot(WED_10 + 1)
    assert snap["totals"] == {"accepted": 3, "denied": 3, "deny_pct": 50.0}
    assert snap["reasons"] == [{"code": "qr_expired", "count": 2},
                               {"code": "venue_closed", "count": 1}]
    assert snap["fares"] == {"free": 1, "half": 1, "full": 1}
    # concession = standard - charged, over accepts only: 600 - 300 fen
    assert snap["money"] == {"standard_fen": 600, "charged_fen": 300,
                             "concession_fen": 300, "concession_yuan": "3.00"}
    assert snap["categories"] == {"senior": 1, "disabled": 1}
    assert snap["credentials"] == {"ssc_card": 5, "essc_qr": 1}
    k1 = next(r for r in snap["routes"] if r["id"] == "K1")
    assert (k1["rides"], k1["denies"]) == (3, 3)
    assert snap["hours"]["accept"][10] == 3 and snap["hours"]["deny"][10] == 3
    # the last second (WED_10) is complete at WED_10 + 1: the chart's last cell
    assert snap["series"]["accept"][-1] == 3 and snap["series"]["deny"][-1] == 3
    assert len(snap["series"]["accept"]) == WINDOW_S
    assert snap["rate"] == {"accept_per_s": 0.3, "deny_per_s": 0.3}


def test_spots_warn_at_80_percent_of_capacity(config: Config) -> None:
    board = LiveBoard(config.city, config.terminals, DAY, started_at=WED_10)
    gate: dict[str, Any] = {"terminal": "T-GATE-S12-01", "operator": "OP-SPOT-S12",
                            "venue": "spot:S12"}
    for _ in range(1600):  # S12 holds 2000 a day
        board.add(record(**gate))
    board.add(deny("capacity_reached", **gate))
    spots = {s["id"]: s for s in board.snapshot(WED_10)["spots"]}
    assert len(spots) == 12
    assert spots["S12"] | {"name": "", "name_en": ""} == {
        "id": "S12", "name": "", "name_en": "", "entries": 1600, "capacity": 2000,
        "pct": 80.0, "level": "warn"}
    assert spots["S01"]["level"] == "ok" and spots["S01"]["entries"] == 0
    assert dict(((s, e) for s, e, _ in board.spot_use()))["S12"] == 1600


def test_terminals_last_seen_silent_and_errors(board: LiveBoard) -> None:
    board.add(record(at=WED_10 - 3600, terminal="T-BUS-K2-001", venue="bus:K2"))
    board.add(record(at=WED_10 - 5))
    for _ in range(6):
        board.http_error("T-BUS-K1-001", 400, WED_10)
    rows = {t["id"]: t for t in board.snapshot(WED_10)["terminals"]}
    assert rows["T-BUS-K2-001"]["status"] == "silent"
    assert rows["T-BUS-K2-001"]["idle_s"] == 3600
    assert rows["T-BUS-K1-001"]["status"] == "warn"  # 6 errors of 7 requests
    assert rows["T-BUS-K1-001"]["error_pct"] == 85.7
    assert rows["T-BUS-K1-002"]["status"] == "idle" and rows["T-BUS-K1-002"]["idle_s"] is None
    # a terminal of the registry never seen at all is silent once the board watched long enough
    later = {t["id"]: t for t in board.snapshot(WED_10 + 601)["terminals"]}
    assert later["T-BUS-K1-002"]["status"] == "silent"
    assert ("T-BUS-K2-001", "bus:K2", WED_10 - 3600) in list(board.terminal_last_seen())


def test_fraud_feed_masks_and_coalesces(board: LiveBoard) -> None:
    board.add(deny("replayed", fraud="replay"))
    board.add(deny("replayed", at=WED_10 + 2, fraud="replay"))  # same holder, same gate
    board.add(deny("card_blocked", at=WED_10 + 3, fraud="blocked_card", card_no="B98765432"))
    board.http_error("T-GATE-S01-01", 401, WED_10 + 4)
    board.http_error("NOT-A-TERMINAL", 401, WED_10 + 4)
    board.http_error("<script>", 401, WED_10 + 4)
    snap = board.snapshot(WED_10 + 5)
    feed = snap["fraud"]["feed"]
    assert [(f["kind"], f["count"]) for f in feed] == [
        ("bad_terminal_signature", 1), ("bad_terminal_signature", 1),
        ("bad_terminal_signature", 1), ("blocked_card", 1), ("replay", 2)]
    assert feed[3]["holder"] == "B98****32" and feed[4]["holder"] == "A12****78"
    assert feed[2]["venue"] == "spot:S01"
    assert {f["terminal"] for f in feed[:2]} == {"NOT-A-TERMINAL", "(invalid id)"}
    assert snap["fraud"]["counts"] == {"replay": 2, "blocked_card": 1,
                                       "bad_terminal_signature": 3}
    text = orjson.dumps(snap)
    assert b"A12345678" not in text and b"B98765432" not in text and REF.encode() not in text
    assert b"senior" not in orjson.dumps(snap["fraud"])


def test_a_flood_stays_bounded(board: LiveBoard) -> None:
    for i in range(FEED_SIZE * 3):
        board.http_error(f"FORGED-{i}", 401, WED_10)
        board.add(deny("replayed", at=WED_10 + i * (COALESCE_S + 1), fraud="replay"))
    snap = board.snapshot(WED_10)
    assert len(snap["fraud"]["feed"]) == FEED_SIZE
    assert len(snap["unregistered"]) == MAX_UNREGISTERED
    assert snap["unregistered"][-1]["id"] == "(other)"


def test_window_moves_and_forgets(board: LiveBoard) -> None:
    board.advance(WED_10)
    board.add(record())
    board.advance(WED_10 + WINDOW_S + 5)
    board.add(record(at=WED_10 - 1))  # late and already out of the window: totals only
    snap = board.snapshot(WED_10 + WINDOW_S + 5)
    assert sum(snap["series"]["accept"]) == 0
    assert snap["totals"]["accepted"] == 2


def test_rollover_resets_the_day_but_not_last_seen(board: LiveBoard) -> None:
    board.add(record(at=WED_10 + 14 * 3600 - 60))  # 23:59 local
    board.add(deny("replayed", at=WED_10 + 14 * 3600 - 30, fraud="replay"))
    board.rollover(DAY + dt.timedelta(days=1))
    snap = board.snapshot(WED_10 + 14 * 3600 + 60)
    assert snap["day"] == "2026-12-03"
    assert snap["totals"] == {"accepted": 0, "denied": 0, "deny_pct": 0.0}
    assert snap["money"]["concession_fen"] == 0 and snap["reasons"] == []
    k1 = next(t for t in snap["terminals"] if t["id"] == "T-BUS-K1-001")
    assert k1["requests"] == 0 and k1["status"] == "ok"
    assert k1["last_seen"] == WED_10 + 14 * 3600 - 30
    assert len(snap["fraud"]["feed"]) == 1  # the feed is recent events, not a daily count
    assert snap["fraud"]["counts"] == {}


def test_disabled_terminals_are_not_silent(config: Config) -> None:
    terminals = dict(config.terminals)
    tid = "T-BUS-K1-001"
    terminals[tid] = terminals[tid].model_copy(update={"enabled": False})
    board = LiveBoard(config.city, terminals, DAY, started_at=WED_10)
    board.add(record(at=WED_10 - 7200))
    row = next(t for t in board.snapshot(WED_10)["terminals"] if t["id"] == tid)
    assert row["status"] == "disabled"


def test_records_from_json_round_trip(board: LiveBoard) -> None:
    # the feed parses records exactly as the ledger stores them
    board.add(LedgerRecord.from_json(dataclasses.replace(record(), card_no=None).to_json()))
    assert board.snapshot(WED_10 + 1)["totals"]["accepted"] == 1
