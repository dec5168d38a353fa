"""What a credential verifier returns: a verified holder, or a typed rejection.

A rejection is a value carrying a reason code; the decision pipeline turns it into a
`deny`. Verifiers never touch the state store: the single-use parts of a credential
(the QR nonce, the card's counter) are handed to the pipeline, which checks and spends
them in the same atomic commit as the decision.
"""

from __future__ import annotations

import datetime as dt

from validator.reasons import Reason
from validator.values import value

CredentialKind = str  # a kind registered in `kinds.py`, e.g. "essc_qr"


class Rejected(Exception):
    """A credential failed a check; `reason` is the protocol's reason code."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail


@value
class VerifiedCredential:
    """A credential whose signatures / cryptogram checked out.

    Exactly one single-use token is set: `nonce` for a QR (spent with `holder_ref`),
    or `card_id` + `atc` for a card tap.  `late_denial` is a deny reason found after the
    cryptographic checks that must still spend the token (a card tap that passed the
    cryptogram but whose card has expired still moves the counter, protocol §3).
    """

    kind: CredentialKind
    holder_ref: str  # 32 lowercase hex (protocol §1)
    birth_date: dt.date
    region: str  # 6-digit region code (发卡地)
    card_no: str  # 9 chars [A-Z0-9]
    nonce: bytes | None = None
    card_id: str | None = None
    atc: int | None = None
    late_denial: Reason | None = None
