"""The engine always has a winner for a primary scan: the unconditional rule offers to
anyone, and an engine cannot be built on rules without one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from validator.config_folder import load_config
from validator.policy.engine import PolicyEngine
from validator.policy.rules import BusPolicy
from validator.policy.types import PolicyInput

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
AT = dt.datetime(2026, 12, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return load_config(CONFIG_DIR).engine


@pytest.mark.parametrize("venue", ["bus:K1", "spot:S01"])
def test_a_birth_date_after_the_scan_still_finds_the_standard_rule(
    engine: PolicyEngine, venue: str
) -> None:
    """The credential checks refuse such a date first; the engine must not fail on it."""
    decision = engine.evaluate(PolicyInput(venue=venue, at=AT,
                                           birth_date=AT.date() + dt.timedelta(days=400)))
    assert decision.age == -2
    assert decision.rule is not None and decision.rule.endswith(".standard"), decision


def test_rules_without_an_unconditional_one_are_refused_at_construction(
    engine: PolicyEngine
) -> None:
    """The schema refuses such a policy at load; the engine does not rely on it alone."""
    policy = engine.policy
    standard = [rule for rule in policy.bus.rules if rule.unconditional]
    assert standard
    bus = BusPolicy.model_construct(
        rules=tuple(r for r in policy.bus.rules if not r.unconditional),
        companion=policy.bus.companion,
        daily_concession_cap=policy.bus.daily_concession_cap)
    broken = policy.model_copy(update={"bus": bus})
    with pytest.raises(ValueError, match="bus: no unconditional rule"):
        PolicyEngine(engine.city, engine.calendar, broken)
