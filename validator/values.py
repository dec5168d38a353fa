"""`@value`: the dataclass for the values that every validation creates anew.

A `@dataclass(frozen=True)` sets each field in `__init__` by calling
`object.__setattr__`, several times the cost of a plain attribute store. A validation
builds ~100 fields of such values (the request, the verified credential, the policy's
input and decision, the ledger record, the commit and its keys): with frozen
dataclasses that was ~80k of a decision's ~360k instructions (callgrind, `make stages`).

`@value` is `@dataclass(slots=True)` at run time and frozen to the type checker (PEP
681's `frozen_default`): mypy rejects an assignment to a field exactly as for a frozen
dataclass, so the code base keeps treating these as immutable. What is given up is the
run-time guard and hashing (an `eq` dataclass that is not frozen has no `__hash__`), so
a type that is hashed, or kept in a cache and shared, stays a frozen dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from typing_extensions import dataclass_transform

__all__ = ["field", "value"]

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def value(cls: type[_T]) -> type[_T]:
    return dataclass(slots=True)(cls)
