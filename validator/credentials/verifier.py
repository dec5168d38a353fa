"""The seam between the decision pipeline and the kinds of credential.

A kind of credential is two things: the value the HTTP layer builds from the request's
`credential` object (`Presented`: it names its `kind`, the wire `type`), and a
`Verifier` for it. The pipeline looks the verifier up by that name (`kinds.py`
registers them) and calls `check`; it never asks which kind it holds.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from validator.credentials.verified import VerifiedCredential

__all__ = ["Presented", "Verifier"]


class Presented(Protocol):
    """A credential as the terminal presented it; `kind` is its wire `credential.type`."""

    @property
    def kind(self) -> str: ...


class Verifier(Protocol):
    """Checks one kind of credential; raises `Rejected` for the first failing step."""

    def check(self, credential: Any, terminal_id: str, scanned_at: dt.datetime,
              now: float, today: dt.date) -> VerifiedCredential:
        """Verify `credential` (of this verifier's kind) presented at `terminal_id`.

        `scanned_at` is the request's own time, `now` the server clock (Unix s) and
        `today` the local date at `now`. Touches no state: single-use tokens go back to
        the pipeline in the `VerifiedCredential`.
        """
        ...

    def named_holder(self, credential: Any) -> str | None:
        """The holder_ref `credential` names, read without verifying it; None if it
        cannot be read that far. A pure function of the credential's bytes, and the
        `holder_ref` that `check` answers whenever it succeeds: a state store that keeps
        a holder's records together keeps a request denied before verification (and any
        retry of it with the same bytes) with the holder it names. Unverified, so it is
        only ever a place to store a record, never a fact about the holder."""
        ...
