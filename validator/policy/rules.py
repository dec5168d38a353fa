"""Schema of the entitlement policy (`config/policy.toml`, and the what-if API's JSON).

A policy is data: per venue kind, an ordered list of rules, each with conditions on the
holder, the fare class it offers and the windows in which it makes no offer; plus the
companion rule, the daily cap of age-based bus concessions and the companion window.
The order of evaluation and the meaning of each field are fixed by `engine.py`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict, model_validator

from validator.policy.fields import (
    Age,
    CategoryCode,
    ClockTime,
    Count,
    FieldPath,
    Flag,
    FrozenModel,
    Grade,
    InvalidField,
    Name,
    RuleId,
)
from validator.policy.types import FareClass

DayKind = Literal["any", "working", "non_working", "holiday"]


class Text(FrozenModel):
    """A message a gate shows, in both languages."""

    zh: Name
    en: Name


class NoOfferWindow(FrozenModel):
    """When a rule makes no offer: on `days`, from `start` (incl.) to `end` (excl.).

    Without `from`/`to` the window is the whole day.
    """

    days: DayKind
    start: ClockTime | None = Field(default=None, alias="from")
    end: ClockTime | None = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _span(self) -> NoOfferWindow:
        if (self.start is None) != (self.end is None):
            raise InvalidField(("to",), self.end, "give both `from` and `to`, or neither")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise InvalidField(("to",), self.end, "must be later than `from`")
        return self


def _check_grades(grades: tuple[int, ...] | None, category: str | None) -> None:
    if grades is None:
        return
    if category is None:
        raise InvalidField(("grades",), grades, "`grades` needs a `category`")
    if not grades or len(set(grades)) != len(grades):
        raise InvalidField(("grades",), grades, "must list distinct grades")


class Rule(FrozenModel):
    """One line of a venue kind's table: every condition given must hold."""

    id: RuleId
    offer: FareClass
    category: CategoryCode | None = None
    grades: tuple[Grade, ...] | None = None  # with `category`; None = any grade
    min_age: Age | None = None  # inclusive
    max_age: Age | None = None  # exclusive
    resident: Flag | None = None  # True: residents only; False: non-residents only
    age_based: Flag = False
    no_offer: tuple[NoOfferWindow, ...] = ()
    relies_on: tuple[CategoryCode, ...]  # the category codes a decision reports
    message: Text

    @model_validator(mode="after")
    def _sane(self) -> Rule:
        _check_grades(self.grades, self.category)
        low, high = self.min_age, self.max_age
        if low is not None and high is not None and low >= high:
            raise InvalidField(("max_age",), self.max_age, "must exceed `min_age`")
        if self.age_based and self.min_age is None and self.max_age is None:
            raise InvalidField(("age_based",), True, "an age-based rule needs an age bound")
        return self

    @property
    def unconditional(self) -> bool:
        return (
            self.category is None
            and self.min_age is None
            and self.max_age is None
            and self.resident is None
            and not self.no_offer
        )


class CompanionRule(FrozenModel):
    """The companion of a holder with `category` (of `grades`), after a primary accept."""

    id: RuleId
    offer: FareClass
    category: CategoryCode
    grades: tuple[Grade, ...] | None = None
    relies_on: tuple[CategoryCode, ...]
    message: Text

    @model_validator(mode="after")
    def _sane(self) -> CompanionRule:
        _check_grades(self.grades, self.category)
        return self


class SpotPolicy(FrozenModel):
    """The rules for scenic spots (`[spot]`)."""

    rules: tuple[Rule, ...] = Field(alias="rule", min_length=1)
    companion: CompanionRule | None = None  # None: every companion is denied


class BusPolicy(SpotPolicy):
    """The rules for buses (`[bus]`), with the daily cap of age-based rides."""

    # Age-based free/half rides per holder per local day; then those rules offer nothing.
    daily_concession_cap: Count


class Policy(FrozenModel):
    """`config/policy.toml`: a versioned entitlement policy."""

    version: Annotated[str, Strict(), Field(min_length=1, max_length=64)]
    companion_window_s: Annotated[int, Strict(), Field(ge=1, le=3600)]
    bus: BusPolicy
    spot: SpotPolicy

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        seen: set[str] = set()
        for kind, section in (("bus", self.bus), ("spot", self.spot)):
            for i, rule in enumerate(section.rules):
                _check_rule_id(seen, kind, (kind, "rule", i, "id"), rule.id)
            if section.companion is not None:
                path: FieldPath = (kind, "companion", "id")
                _check_rule_id(seen, kind, path, section.companion.id)
            if not any(rule.unconditional for rule in section.rules):
                raise InvalidField(
                    (kind, "rule"), None, "needs one unconditional rule (the standard fare)"
                )
        return self


def _check_rule_id(seen: set[str], kind: str, path: FieldPath, rule_id: str) -> None:
    if not rule_id.startswith(f"{kind}."):
        raise InvalidField(path, rule_id, f"a {kind} rule id starts with '{kind}.'")
    if rule_id in seen:
        raise InvalidField(path, rule_id, "duplicate rule id")
    seen.add(rule_id)
