"""`@value` (validator/values.py): a slots dataclass, immutable to the type checker."""

from __future__ import annotations

import dataclasses

import pytest

from validator.values import field, value


@value
class Pair:
    left: int
    right: tuple[str, ...] = field(default_factory=tuple)
    secret: str = field(default="", repr=False)


def test_a_value_is_a_slots_dataclass_with_defaults() -> None:
    pair = Pair(1)
    assert dataclasses.is_dataclass(pair)
    assert (pair.left, pair.right, pair.secret) == (1, (), "")
    assert not hasattr(pair, "__dict__")  # slots: no per-instance dict
    with pytest.raises(AttributeError):
        pair.other = 2  # type: ignore[attr-defined]


def test_values_compare_by_fields_and_keep_field_options() -> None:
    assert Pair(1, ("a",)) == Pair(1, ("a",)) != Pair(2, ("a",))
    assert "secret" not in repr(Pair(1, secret="110101199001011237"))


def test_a_value_is_not_hashable() -> None:
    # The price of a plain __init__: a type that must be hashed stays a frozen dataclass.
    with pytest.raises(TypeError, match="unhashable"):
        hash(Pair(1))
