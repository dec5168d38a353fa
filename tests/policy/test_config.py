"""Loading `config/`: the default city as policy.md describes it, and errors that name
the file, the field and the bad value."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tomllib
from pathlib import Path

import pytest

from validator.config_folder import ConfigError, load_config, load_policy_json

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A private copy of the default configuration, for a test to break."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, target)
    return target


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= count, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def load_error(config_dir: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir)
    return caught.value


# --- the default configuration ---------------------------------------------------------


def test_default_city() -> None:
    config = load_config(CONFIG_DIR)
    city = config.city
    assert (city.name, city.name_zh, city.time_zone) == ("Demo City", "示范市", "Asia/Shanghai")
    assert city.region == "369900"
    assert city.resident_region_prefixes == ("3699",)
    operators = {o.id: o.name for o in city.operators}
    assert operators["OP-BUS-CITY"] == "市公交集团"
    assert operators["OP-BUS-SUBURB"] == "城乡公交"
    assert {f"OP-SPOT-S{n:02d}" for n in range(1, 13)} <= operators.keys()
    routes = {r.id: (r.operator, r.standard_fen) for r in city.routes}
    assert routes == {
        **{r: ("OP-BUS-CITY", 200) for r in ("K1", "K2", "K3", "K5", "K8")},
        **{r: ("OP-BUS-SUBURB", 300) for r in ("S101", "S102", "S103")},
    }


def test_default_spots() -> None:
    spots = {s.id: s for s in load_config(CONFIG_DIR).city.spots}
    assert list(spots) == [f"S{n:02d}" for n in range(1, 13)]
    for spot in spots.values():
        assert spot.operator == f"OP-SPOT-{spot.id}"
        assert spot.name and spot.name_en
    s01, s12 = spots.pop("S01"), spots.pop("S12")
    assert (s01.ticket_fen, s01.capacity_per_day) == (12000, 20000)
    assert (s01.opens, s01.closes) == (dt.time(7, 30), dt.time(18, 0))
    assert (s12.ticket_fen, s12.capacity_per_day) == (3000, 2000)
    assert (s12.opens, s12.closes) == (dt.time(8, 0), dt.time(17, 30))
    for spot in spots.values():  # the defaults
        assert (spot.ticket_fen, spot.capacity_per_day) == (6000, 8000)
        assert (spot.opens, spot.closes) == (dt.time(8, 0), dt.time(17, 30))


def test_default_terminals() -> None:
    config = load_config(CONFIG_DIR)
    operators = config.city.venue_operators()
    for terminal_id, terminal in config.terminals.items():
        assert terminal.id == terminal_id
        assert terminal.operator == operators[terminal.venue]
        assert terminal.kind == ("gate" if terminal.venue.startswith("spot:") else "bus")
    disabled = [t.id for t in config.terminals.values() if not t.enabled]
    assert disabled == ["T-GATE-S01-99"]
    enabled = [t for t in config.terminals.values() if t.enabled]
    for venue in operators:
        assert sum(t.venue == venue for t in enabled) >= 2, venue
    assert {"T-GATE-S01-01", "T-GATE-S01-02", "T-BUS-K1-001", "T-BUS-K1-002"} <= set(
        config.terminals
    )


def test_default_policy() -> None:
    policy = load_config(CONFIG_DIR).policy
    bus = "veteran disabled senior_70 senior_65 senior_60 standard"
    assert [r.id for r in policy.bus.rules] == [f"bus.{name}" for name in bus.split()]
    spot = "veteran disabled senior_65 senior_60 resident standard"
    assert [r.id for r in policy.spot.rules] == [f"spot.{name}" for name in spot.split()]
    assert policy.bus.daily_concession_cap == 4
    assert policy.companion_window_s == 120
    for companion in (policy.bus.companion, policy.spot.companion):
        assert companion is not None
        assert companion.category == "disabled"
        assert (companion.grades, companion.offer) == ((1, 2), "free")


def test_policy_round_trips_through_json() -> None:
    policy = load_config(CONFIG_DIR).policy
    as_json = json.loads(json.dumps(policy.model_dump(mode="json", by_alias=True)))
    peak = {"days": "working", "from": "07:00", "to": "09:00"}
    assert as_json["bus"]["rule"][3]["no_offer"][0] == peak
    assert load_policy_json(as_json) == policy


def test_policy_json_from_the_toml_file() -> None:
    with (CONFIG_DIR / "policy.toml").open("rb") as file:
        data = tomllib.load(file)
    data["bus"]["daily_concession_cap"] = 2
    assert load_policy_json(data).bus.daily_concession_cap == 2


# --- errors name the file, the field and the value ----------------------------------------


def test_bad_time(config_dir: Path) -> None:
    edit(config_dir / "city.toml", 'opens = "07:30"', 'opens = "25:00"')
    error = load_error(config_dir)
    assert error.file == "city.toml"
    assert error.problems[0].path == "spot[0](S01).opens"
    assert error.problems[0].value == "'25:00'"
    assert "city.toml: spot[0](S01).opens: expected a local time" in str(error)


def test_opening_after_closing(config_dir: Path) -> None:
    edit(config_dir / "city.toml", 'closes = "18:00"', 'closes = "07:00"')
    error = load_error(config_dir)
    assert str(error) == "city.toml: spot[0](S01).closes: must be later than `opens` (got 07:00:00)"


def test_bad_default_is_reported_under_spot_defaults(config_dir: Path) -> None:
    edit(config_dir / "city.toml", 'opens = "08:00"', 'opens = "8am"')
    error = load_error(config_dir)
    assert error.problems[0].path == "spot_defaults.opens"
    assert error.problems[0].value == "'8am'"


def test_route_with_unknown_operator(config_dir: Path) -> None:
    old, new = 'id = "K3"\noperator = "OP-BUS-CITY"', 'id = "K3"\noperator = "OP-BUS-X"'
    edit(config_dir / "city.toml", old, new)
    assert str(load_error(config_dir)) == (
        "city.toml: route[2](K3).operator: not an [[operator]] id (got 'OP-BUS-X')"
    )


def test_strict_numbers(config_dir: Path) -> None:
    edit(config_dir / "city.toml", "standard_fen = 200", 'standard_fen = "200"')
    error = load_error(config_dir)
    assert error.problems[0].path == "route[0](K1).standard_fen"
    assert "valid integer" in error.problems[0].detail


def test_unknown_time_zone(config_dir: Path) -> None:
    edit(config_dir / "city.toml", '"Asia/Shanghai"', '"Asia/Atlantis"')
    assert "time_zone: not an IANA time zone" in str(load_error(config_dir))


def test_unknown_venue_in_terminals(config_dir: Path) -> None:
    edit(config_dir / "terminals.toml", 'venue = "spot:S12"', 'venue = "spot:S13"')
    error = load_error(config_dir)
    assert error.file == "terminals.toml"
    assert str(error) == (
        "terminals.toml: terminal[38](T-GATE-S12-01).venue: no such route or spot in the city"
        " (got 'spot:S13')"
    )


def test_terminal_operator_must_be_the_venues(config_dir: Path) -> None:
    edit(config_dir / "terminals.toml", 'operator = "OP-SPOT-S02"', 'operator = "OP-SPOT-S03"')
    error = load_error(config_dir)
    assert error.problems[0].path == "terminal[18](T-GATE-S02-01).operator"
    assert "OP-SPOT-S02" in error.problems[0].detail


def test_terminal_kind_must_fit_the_venue(config_dir: Path) -> None:
    edit(config_dir / "terminals.toml", 'kind = "gate"', 'kind = "bus"')
    error = load_error(config_dir)
    assert error.problems[0].path == "terminal[16](T-GATE-S01-01).venue"
    assert "a bus terminal needs a `bus:` venue" in str(error)


def test_terminal_ids_are_checked(config_dir: Path) -> None:
    edit(config_dir / "terminals.toml", 'id = "T-BUS-K2-001"', 'id = "t-bus-k2-001"')
    error = load_error(config_dir)
    assert error.problems[0].path == "terminal[2](t-bus-k2-001).id"
    edit(config_dir / "terminals.toml", 'id = "t-bus-k2-001"', 'id = "T-BUS-K1-001"')
    assert "terminal[2](T-BUS-K1-001).id: duplicate id" in str(load_error(config_dir))


def test_duplicate_rule_id(config_dir: Path) -> None:
    edit(config_dir / "policy.toml", 'id = "spot.disabled"', 'id = "spot.veteran"')
    assert str(load_error(config_dir)) == (
        "policy.toml: spot.rule[1](spot.veteran).id: duplicate rule id (got 'spot.veteran')"
    )


@pytest.mark.parametrize(
    ("old", "new", "path", "detail"),
    [
        pytest.param(
            'offer = "half"',
            'offer = "cheap"',
            "bus.rule[4](bus.senior_60).offer",
            "Input should be",
            id="unknown offer",
        ),
        pytest.param(
            "min_age = 60\nmax_age = 65",
            "min_age = 65\nmax_age = 60",
            "bus.rule[4](bus.senior_60).max_age",
            "must exceed",
            id="min_age above max_age",
        ),
        pytest.param(
            "min_age = 70",
            "min_age = 200",
            "bus.rule[2](bus.senior_70).min_age",
            "less than or equal to 150",
            id="age above 150",
        ),
        pytest.param(
            "grades = [1, 2]",
            "grades = [1, 5]",
            "bus.companion.grades[1]",
            "less than or equal to 4",
            id="grade above 4",
        ),
        pytest.param(
            'to = "09:00"',
            'to = "06:00"',
            "bus.rule[3](bus.senior_65).no_offer[0].to",
            "later than `from`",
            id="window ends before it starts",
        ),
        pytest.param(
            'days = "holiday"',
            'days = "festival"',
            "spot.rule[4](spot.resident).no_offer[0].days",
            "Input should be",
            id="unknown day kind",
        ),
        pytest.param(
            'id = "bus.standard"\noffer = "full"',
            'id = "bus.standard"\nresident = false\noffer = "full"',
            "bus.rule",
            "unconditional rule",
            id="no unconditional rule",
        ),
        pytest.param(
            'id = "spot.standard"',
            'id = "bus.standard2"',
            "spot.rule[5](bus.standard2).id",
            "starts with 'spot.'",
            id="rule id of the wrong kind",
        ),
        pytest.param(
            'age_based = true\noffer = "free"\nrelies_on',
            'age_based = true\ncolour = 1\noffer = "free"\nrelies_on',
            "bus.rule[2](bus.senior_70).colour",
            "Extra inputs",
            id="unknown key",
        ),
        pytest.param(
            "daily_concession_cap = 4",
            "daily_concession_cap = -1",
            "bus.daily_concession_cap",
            "greater than or equal to 0",
            id="negative cap",
        ),
    ],
)
def test_policy_errors(config_dir: Path, old: str, new: str, path: str, detail: str) -> None:
    edit(config_dir / "policy.toml", old, new)
    error = load_error(config_dir)
    assert error.file == "policy.toml"
    assert error.problems[0].path == path
    assert detail in error.problems[0].detail


@pytest.mark.parametrize(
    ("old", "new", "path", "detail"),
    [
        pytest.param(
            "{ from = 2026-04-04,",
            '{ from = "2026-02-30",',
            "year[0].holidays[2].from",
            "not a real date",
            id="not a real date",
        ),
        pytest.param(
            "to = 2026-04-06",
            "to = 2026-04-01",
            "year[0].holidays[2].to",
            "must not be before",
            id="range ends before it starts",
        ),
        pytest.param(
            "2026-01-04, 2026-02-14",
            "2026-01-05, 2026-02-14",
            "year[0].makeup_workdays[0]",
            "not a weekend date",
            id="makeup day on a weekday",
        ),
        pytest.param(
            "2026-01-04, 2026-02-14",
            "2026-02-15, 2026-02-14",
            "year[0].makeup_workdays[0]",
            "is also a holiday",
            id="makeup day also a holiday",
        ),
        pytest.param(
            "makeup_workdays = []\n",
            "makeup_workdays = []\n[[year]]\nyear = 2026\n",
            "year[2].year",
            "duplicate year",
            id="duplicate year",
        ),
        pytest.param(
            "{ from = 2027-01-01",
            "{ from = 2027-01-01T08:00:00",
            "year[1].holidays[0].from",
            "expected a date",
            id="date-time for a date",
        ),
    ],
)
def test_calendar_errors(config_dir: Path, old: str, new: str, path: str, detail: str) -> None:
    edit(config_dir / "calendar.toml", old, new)
    error = load_error(config_dir)
    assert error.file == "calendar.toml"
    assert error.problems[0].path == path
    assert detail in error.problems[0].detail


def test_bad_toml(config_dir: Path) -> None:
    edit(config_dir / "policy.toml", "version = \"v1\"", "version = v1")
    error = load_error(config_dir)
    assert error.file == "policy.toml"
    assert "TOML syntax error" in str(error)
    assert "line 20" in str(error)


def test_missing_file(config_dir: Path) -> None:
    (config_dir / "calendar.toml").unlink()
    assert str(load_error(config_dir)).startswith("calendar.toml: cannot read")


def test_missing_field(config_dir: Path) -> None:
    edit(config_dir / "city.toml", 'region = "369900"\n', "")
    assert str(load_error(config_dir)) == "city.toml: region: required, but missing"


def test_policy_json_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        load_policy_json({"version": "x", "companion_window_s": 120.5})
    error = caught.value
    assert error.file == "policy (JSON)"
    paths = [p.path for p in error.problems]
    assert paths == ["companion_window_s", "bus", "spot"]
    with pytest.raises(ConfigError, match="policy \\(JSON\\): "):
        load_policy_json(["not", "a", "policy"])
