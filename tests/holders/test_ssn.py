"""SSN checks of protocol §1: shape, ISO 7064 MOD 11-2 check character, birth date."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from terminals_sim.card import make_ssn
from validator.holders.ssn import InvalidSsn, parse_ssn, ssn_check_char

TODAY = dt.date(2026, 11, 27)


def with_check(first17: str) -> str:
    return first17 + ssn_check_char(first17)


@pytest.mark.parametrize(
    ("first17", "check"),
    [
        # The worked examples of GB 11643-1999.
        ("11010519491231002", "X"),
        ("44052418800101001", "4"),
    ],
)
def test_check_char_matches_published_examples(first17: str, check: str) -> None:
    assert ssn_check_char(first17) == check


def test_valid_ssns_give_their_birth_date() -> None:
    assert parse_ssn("11010519491231002X", TODAY) == dt.date(1949, 12, 31)
    assert parse_ssn("440524188001010014", TODAY) == dt.date(1880, 1, 1)
    assert parse_ssn(with_check("11010520000229123"), TODAY) == dt.date(2000, 2, 29)


def test_born_today_is_valid() -> None:
    assert parse_ssn(with_check(f"110105{TODAY:%Y%m%d}123"), TODAY) == TODAY


@pytest.mark.parametrize(
    "ssn",
    [
        pytest.param("11010519491231002x", id="lower-case x"),
        pytest.param("11010519491231002", id="17 chars"),
        pytest.param("11010519491231002X0", id="19 chars"),
        pytest.param("", id="empty"),
        pytest.param("1101051949123100AX", id="letter in the first 17"),
        pytest.param("X10105194912310020", id="X not last"),
        pytest.param("١1010519491231002X", id="non-ASCII digit"),
        pytest.param("１1010519491231002X", id="full-width digit"),
        pytest.param("11010519491231002X\n", id="trailing newline"),
        pytest.param("110105194912310021", id="bad check char"),
        pytest.param(with_check("11010519500230123"), id="30 February"),
        pytest.param(with_check("11010519000229123"), id="29 February 1900"),
        pytest.param(with_check("11010519501301123"), id="month 13"),
        pytest.param(with_check("11010500000101123"), id="year 0000"),
        pytest.param(with_check("11010520261128123"), id="born tomorrow"),
    ],
)
def test_invalid_ssns_are_rejected(ssn: str) -> None:
    with pytest.raises(InvalidSsn) as excinfo:
        parse_ssn(ssn, TODAY)
    assert isinstance(excinfo.value, ValueError)
    # The message ends up in logs: it names the check, never the number.
    if len(ssn) >= 6:
        assert ssn[:17] not in str(excinfo.value)


def test_every_wrong_check_char_is_rejected() -> None:
    first17 = "36990019500301013"
    good = ssn_check_char(first17)
    for char in "0123456789X":
        if char != good:
            with pytest.raises(InvalidSsn, match="check character"):
                parse_ssn(first17 + char, TODAY)


@pytest.mark.parametrize("first17", ["1101051949123100", "1101051949123100A", "١" * 17])
def test_check_char_needs_17_ascii_digits(first17: str) -> None:
    with pytest.raises(InvalidSsn):
        ssn_check_char(first17)


def test_simulator_and_validator_agree_on_the_check_char() -> None:
    # The simulator re-implements MOD 11-2 (it may not import the validator).
    rng = random.Random(1)
    for _ in range(2000):
        birth = dt.date(1900, 1, 1) + dt.timedelta(days=rng.randrange(46000))
        ssn = make_ssn(f"{rng.randrange(110000, 660000)}", birth, rng.randrange(1000))
        assert parse_ssn(ssn, TODAY) == birth
