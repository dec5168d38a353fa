"""The decision object a terminal receives (protocol §4), built once and stored verbatim."""

from __future__ import annotations

from typing import Any

import orjson

from validator.policy.types import PolicyDecision
from validator.reasons import DENY_MESSAGES, Reason


def render_decision(
    request_id: str, txn_id: str, reason: Reason, policy: PolicyDecision | None
) -> bytes:
    """The JSON bytes of the decision; `policy` is None for a deny before the policy ran."""
    body: dict[str, Any] = {"request_id": request_id, "txn_id": txn_id}
    if policy is not None and policy.accepted and policy.fare is not None:
        fare = policy.fare
        body.update(
            decision="accept",
            reason=Reason.OK.value,
            fare={"class": fare.fare_class.value, "amount_fen": fare.amount_fen,
                  "standard_fen": fare.standard_fen},
            rule=policy.rule,
            categories=list(policy.categories),
            message={"zh": policy.message.zh, "en": policy.message.en},
        )
        return orjson.dumps(body)
    message = policy.message if policy is not None else DENY_MESSAGES[reason]
    body.update(decision="deny", reason=reason.value, rule=None, categories=[],
                message={"zh": message.zh, "en": message.en})
    return orjson.dumps(body)
