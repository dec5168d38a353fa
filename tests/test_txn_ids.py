"""Transaction ids from a pool of kernel randomness (validator/txn_ids.py)."""

from __future__ import annotations

import os
import re

from validator.txn_ids import new_txn_id


def test_ids_are_32_hex_digits_and_never_repeat_across_refills() -> None:
    ids = [new_txn_id() for _ in range(5000)]  # ~20 refills of the 256-id pool
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_txn_id()  # the pool is filled and partly used
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, "".join(new_txn_id() for _ in range(8)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    os.waitpid(pid, 0)
    parent = "".join(new_txn_id() for _ in range(8))
    child_ids = {child[i:i + 32] for i in range(0, len(child), 32)}
    parent_ids = {parent[i:i + 32] for i in range(0, len(parent), 32)}
    assert len(child_ids) == 8 and not child_ids & parent_ids
