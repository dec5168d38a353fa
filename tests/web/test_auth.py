"""Terminal signatures (protocol §4) checked in-process, beside the HTTP tests."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from validator.credentials.trust import TrustList
from validator.keyset import KeySet
from validator.policy.model import Terminal
from validator.web.exceptions import ApiError
from validator.web.terminal.auth import TerminalAuth, terminal_string_to_sign

NOW = 1_790_000_000
BODY_SHA256 = hashlib.sha256(b"{}").hexdigest()


def _setup(n: int) -> tuple[dict[str, Terminal], KeySet]:
    terminals = {f"BUS-{i:03d}": Terminal(id=f"BUS-{i:03d}", kind="bus", venue="bus:R1",
                                          operator="BUSCO")
                 for i in range(n)}
    keys = KeySet(trust_list=TrustList.from_jwks({"keys": []}), card_master_keys={},
                  pepper=bytes(32), operator_tokens=(),
                  terminal_secrets={tid: hashlib.sha256(tid.encode()).digest()
                                    for tid in terminals})
    return terminals, keys


def _signed(keys: KeySet, terminal_id: str, timestamp: str = str(NOW)) -> str:
    message = terminal_string_to_sign("POST", "/v1/validations", timestamp, BODY_SHA256)
    return hmac.new(keys.terminal_secrets[terminal_id], message, hashlib.sha256).hexdigest()


def _check(auth: TerminalAuth, terminal_id: str, signature: str) -> Terminal:
    return auth.authenticate(terminal_id, str(NOW), signature, "POST", "/v1/validations",
                             BODY_SHA256, now=NOW)


def test_each_terminal_is_checked_with_its_own_secret_through_the_keyed_cache() -> None:
    # A cache smaller than the fleet: contexts are evicted and keyed again, never mixed up.
    terminals, keys = _setup(10)
    auth = TerminalAuth(terminals, keys, cache_size=4)
    for _ in range(3):
        for tid in terminals:
            assert _check(auth, tid, _signed(keys, tid)).id == tid
            assert _check(auth, tid, _signed(keys, tid).upper()).id == tid
            other = "BUS-000" if tid != "BUS-000" else "BUS-001"
            with pytest.raises(ApiError) as refused:
                _check(auth, tid, _signed(keys, other))
            assert refused.value.status == 401
    assert len(auth.keyed) == 4
