"""An offline record's upload as the decision pipeline sees it (protocol §8.4).

`OfflineContext` is what makes a validation an upload rather than a live scan: the
terminal's own decision and how long the record's token and idempotency entry are kept.
Its methods are the rules `decide.py` applies differently for an upload; the pipeline
itself (verify, snapshot, policy, commit) is the live scan's. It sits beside the
pipeline, not in `offline/`: `offline/` settles uploads by calling the pipeline, so the
pipeline's own input cannot live there without an import cycle.
"""

from __future__ import annotations

import hashlib
from typing import Any

from validator.credentials.verified import VerifiedCredential
from validator.reasons import Reason
from validator.values import value

__all__ = ["OfflineContext"]


@value
class OfflineContext:
    """What makes a request an offline record's upload: the terminal's own decision,
    and how long the record's token and idempotency entry are kept (seconds)."""

    terminal_decision: str  # "accept" | "deny"
    terminal_reason: str
    keep_s: int

    def token(self, cred: VerifiedCredential) -> bytes | None:
        """The nonce the record spends: a QR's own; for a card tap, one made of
        (card_id, counter), so a counter used on two terminals shows as a spent nonce."""
        if cred.nonce is not None or cred.card_id is None:
            return cred.nonce
        return hashlib.sha256(f"card|{cred.card_id}|{cred.atc}".encode()).digest()[:16]

    def turned_away(self, accepted: bool) -> bool:
        """Whether an accept of the service's must settle as `terminal_denied`: the
        terminal turned the passenger away, so there was no ride or entry to pay for."""
        return accepted and self.terminal_decision == "deny"

    def differs(self, decision: str, reason: str) -> bool:
        """Whether the service's decision and reason are not the terminal's."""
        return (decision, reason) != (self.terminal_decision, self.terminal_reason)

    def ledger_fields(self, accepted: bool, reason: Reason, uploaded_at: str) -> dict[str, Any]:
        """The ledger record's offline fields: the terminal's decision beside ours."""
        return {"mode": "offline", "terminal_decision": self.terminal_decision,
                "terminal_reason": self.terminal_reason,
                "differs": self.differs("accept" if accepted else "deny", reason.value),
                "uploaded_at": uploaded_at}
