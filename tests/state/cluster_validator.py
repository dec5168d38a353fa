"""A validator process that stops between the steps of a spot entry, to be killed there.

`python -m tests.state.cluster_validator URL MODE REQUEST_ID HOLDER_REF`: prints `ready`
once it is started, waits for a line on stdin (so that a test starts the slow part, a
Python process, before its reservation's time runs), reserves one entry of the test spot
(capacity 2) with a 3 s reservation, then — MODE `reserved` —
prints `reserved` and waits to be killed, or — MODE `committed` — runs the holder's
commit with that reservation, prints `committed`, and waits to be killed before it
settles the reservation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys

from validator.state import capacity, slots
from validator.state.rediscluster import RedisClusterStore
from validator.state.store import USAGE_TTL_S, Commit

SPOT, DAY, CAPACITY, TTL_MS = "S09", dt.date(2026, 12, 2), 2, 3000


def entry(request_id: str, holder_ref: str) -> Commit:
    return Commit(terminal_id="T-GATE-S09-01", request_id=request_id, body_sha256="0" * 64,
                  response=b"{}", ledger=b'{"request":"%s"}' % request_id.encode(),
                  local_date=DAY, holder_ref=holder_ref, spot_id=SPOT, spot_capacity=CAPACITY)


async def main(url: str, mode: str, request_id: str, holder_ref: str) -> None:
    store = RedisClusterStore.from_url(url)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    token = "t" + request_id
    deadline = await capacity.reserve(store, SPOT, DAY, CAPACITY, token, holder_ref,
                                      USAGE_TTL_S, ttl_ms=TTL_MS)
    assert deadline is not None
    if mode == "committed":
        c = entry(request_id, holder_ref)
        await store._run(c, slots.commit_keys(c, token),
                         {"reservation_deadline_ms": str(deadline)})
    print(mode, flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
