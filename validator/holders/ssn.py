"""The 社会保障号码 (SSN, same as the resident ID number) checks of protocol §1.

An SSN is 18 characters: a 6-digit region, the birth date `YYYYMMDD`, a 3-digit sequence
code and an ISO 7064 MOD 11-2 check character (GB 11643). The validator only ever reads an
SSN to check it and to derive `holder_ref`; nothing here keeps it, and no error message
repeats it (an exception message ends up in logs).
"""

from __future__ import annotations

import datetime as dt
import operator
import re

__all__ = ["InvalidSsn", "birth_date_of_well_formed", "parse_ssn", "ssn_check_char"]

# `[0-9]`, not `\d`: `\d` also matches non-ASCII digits such as "١".
_SSN = re.compile(r"[0-9]{17}[0-9X]")
_FIRST17 = re.compile(r"[0-9]{17}")

# ISO 7064 MOD 11-2: weight of position i (0-based, left to right) is 2^(17-i) mod 11.
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
# Check character indexed by (sum of weighted digits) mod 11.
_CHECK_CHARS = "10X98765432"
# Weighting the ASCII codes adds 48 * sum(weights); subtract it once instead of per digit.
_ASCII_ZERO_OFFSET = ord("0") * sum(_WEIGHTS)


class InvalidSsn(ValueError):
    """An SSN failed a §1 check. The message names the check, never the SSN."""


def ssn_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character ("0"–"9" or "X") for 17 ASCII digits."""
    if not _FIRST17.fullmatch(first17):
        raise InvalidSsn("the first 17 characters must be digits")
    return _check_char(first17)


def _check_char(first17: str) -> str:
    total = sum(map(operator.mul, _WEIGHTS, first17.encode("ascii"))) - _ASCII_ZERO_OFFSET
    return _CHECK_CHARS[total % 11]


def parse_ssn(ssn: str, today: dt.date) -> dt.date:
    """Check an SSN (protocol §1) and return the birth date it encodes.

    Raises `InvalidSsn` if it is not 17 digits and a digit or upper-case `X`, if the
    check character does not match, or if characters 7–14 are not a real date on or
    before `today` (the local date).
    """
    if not _SSN.fullmatch(ssn):
        raise InvalidSsn("not 17 digits and a digit or upper-case X")
    return birth_date_of_well_formed(ssn, today)


def birth_date_of_well_formed(ssn: str, today: dt.date) -> dt.date:
    """`parse_ssn` for an SSN already known to match `[0-9]{17}[0-9X]` (a caller that
    checked its format with other fields in one pattern): the check character and the
    birth date. Raises `InvalidSsn`."""
    if _check_char(ssn[:17]) != ssn[17]:
        raise InvalidSsn("check character mismatch")
    try:
        birth = dt.date(int(ssn[6:10]), int(ssn[10:12]), int(ssn[12:14]))
    except ValueError:
        raise InvalidSsn("birth date is not a real date") from None
    if birth > today:
        raise InvalidSsn("birth date is in the future")
    return birth
