"""What a screen may show of a card or a holder: masked, shortened, never whole.

The dashboard shows no name or SSN (the ledger has none) and no full card number; a
holder_ref is a pseudonym already, but a whole one is a join key across exports, so
screens show its first digits only.
"""

from __future__ import annotations


def mask_card(card_no: str | None) -> str | None:
    """`A12345678` → `A12****78`: enough to tell cards apart on a screen, not to use one."""
    if not card_no:
        return None
    if len(card_no) <= 5:
        return "*" * len(card_no)
    return card_no[:3] + "*" * (len(card_no) - 5) + card_no[-2:]


def short_ref(holder_ref: str | None) -> str | None:
    """The first 8 hex digits of a holder_ref: a pseudonym already, shortened for screens."""
    return None if not holder_ref else holder_ref[:8] + "…"
