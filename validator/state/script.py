"""The Redis store's Lua scripts, and the commit script's call built by name.

`commit_call` is the one place that says what `lua/commit.lua` receives: the keys a
commit touches (named by `keys.commit_keys`) and its arguments, each under a name. The
call carries the names with the values — ARGV[1] is a JSON object of the small
arguments whose `keys` names the KEYS in order (the script decodes it with cjson) — so
the script reads `K.nonce`, `A.ride_cap`, not `KEYS[3]`, `ARGV[5]`, and a key the commit
has no guard for is not passed at all (in a Redis Cluster every key passed must hash to
the script's slot, so an empty placeholder key would not do). The response and the
ledger record follow as ARGV[2] and ARGV[3], as bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import orjson

from validator.state import codec
from validator.state.keys import commit_keys
from validator.state.store import IDEMPOTENCY_TTL_S, NONCE_TTL_S, USAGE_TTL_S, Commit

Arg = str | bytes | int


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script's source and SHA-1 (EVALSHA addresses it; NOSCRIPT → load it)."""

    source: str
    sha: str

    @classmethod
    def named(cls, name: str) -> Script:
        source = resources.files("validator.state").joinpath("lua", name).read_text("utf-8")
        return cls(source, hashlib.sha1(source.encode()).hexdigest())


COMMIT = Script.named("commit.lua")
PUT_HOLDERS = Script.named("put_holders.lua")
LEASE = Script.named("lease.lua")
RELEASE = Script.named("release.lua")


def commit_call(
    c: Commit,
    ledger_retention_s: int,
    named_keys: dict[str, str] | None = None,
    facts: dict[str, str] | None = None,
) -> tuple[Arg, ...]:
    """`EVALSHA <sha>` + this tuple runs `c`: numkeys, KEYS, then ARGV (see above).

    `named_keys` defaults to one Redis's layout (`keys.commit_keys`); a cluster passes
    its own, and in `facts` what it read outside the holder's slot (commit.lua's header).
    """
    if named_keys is None:
        named_keys = commit_keys(c)
    # Numbers travel as strings: cjson parses a string faster than a number, and Redis
    # takes the string as it is.
    args: dict[str, object] = {
        "keys": list(named_keys),
        "body_sha256": c.body_sha256,
        "idempotency_ttl_s": _ttl(c.idempotency_ttl_s, IDEMPOTENCY_TTL_S, _IDEMPOTENCY_TTL),
        "ledger_retention_s": str(ledger_retention_s),
    }
    if c.nonce is not None:
        args["nonce_ttl_s"] = _ttl(c.nonce_ttl_s, NONCE_TTL_S, _NONCE_TTL)
    if c.atc is not None:
        args["atc"] = str(c.atc)
    if c.concession_ride_cap is not None:
        args["ride_cap"] = str(c.concession_ride_cap)
        args["usage_ttl_s"] = _USAGE_TTL
    if c.spot_capacity is not None:
        args["capacity"] = str(c.spot_capacity)
        args["usage_ttl_s"] = _USAGE_TTL
    if c.concession_entry:
        args["usage_ttl_s"] = _USAGE_TTL
    if c.companion_use is not None:
        args["companion_use"] = codec.exact(c.companion_use)
    if c.companion_open_at is not None:
        args["companion_open_at"] = codec.exact(c.companion_open_at)
        args["companion_ttl_s"] = str(c.companion_ttl_s)
    if facts:
        args.update(facts)
    return (len(named_keys), *named_keys.values(), orjson.dumps(args), c.response, c.ledger)


_IDEMPOTENCY_TTL, _NONCE_TTL, _USAGE_TTL = map(str, (IDEMPOTENCY_TTL_S, NONCE_TTL_S, USAGE_TTL_S))


def _ttl(seconds: int, usual: int, usual_text: str) -> str:
    """A TTL as the script takes it; the usual one's text is made once."""
    return usual_text if seconds == usual else str(seconds)
