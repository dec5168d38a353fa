"""Transaction ids: 128 random bits each, as 32 lower-case hex digits.

`os.urandom(16)` per validation is one `getrandom()` system call per validation; this
takes 4 KiB at a time (one call per 256 ids) and hands out slices of its hex. The bytes
are the same kernel CSPRNG's, so an id is as unpredictable as before. A child made by
`fork()` starts a fresh pool, so parent and child never hand out the same ids.
"""

from __future__ import annotations

import os

__all__ = ["new_txn_id"]

_HEX_PER_ID = 32
_POOL_BYTES = 4096

_pool = ""
_at = 0


def new_txn_id() -> str:
    global _pool, _at
    at = _at
    if at >= len(_pool):
        _pool, at = os.urandom(_POOL_BYTES).hex(), 0
    _at = at + _HEX_PER_ID
    return _pool[at:at + _HEX_PER_ID]


def _drop_pool() -> None:
    global _pool, _at
    _pool, _at = "", 0


os.register_at_fork(after_in_child=_drop_pool)
