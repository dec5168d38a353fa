"""Signed validation requests for `wrk`, to measure the server without a Python client.

The simulator's open-loop runner costs ~400 µs of CPU per request, so on a 2-core
machine it cannot offer more than ~2,000 requests/s: it measures latency honestly but
not the server's ceiling. `wrk` (C, closed loop) costs a few µs per request; replaying
requests prepared here it saturates the validator and shows its capacity.

    python -m bench.wrk_requests --keys DIR --kind card|qr --n 60000 [--holders 2000]
    taskset -c 1 wrk -t1 -c64 -d10s -s bench/wrk_replay.lua --latency http://127.0.0.1:8080

Every request is unique (fresh request_id, card counter or QR nonce) and signed with
an `X-Timestamp` of now: replay within 60 s (QR freshness) of preparing the file.
`--holders` sets how many e-cards the QRs come from, so level-1 cache hits are realistic.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path
from typing import Any

from bench.creds import TERMINAL, cards, issuer, terminal_secret
from terminals_sim.ecard import Phone, generate_key

OUT = Path("bench-results/wrk-requests.tsv")


def card_taps(keys_dir: Path, n: int, now: int) -> list[dict[str, Any]]:
    # Fresh card ids every run: a card tapped again from counter 1 would be `replayed`.
    first = secrets.randbelow(10**9)
    return [dict(card.tap(TERMINAL, now, secrets.token_hex(4).upper()))
            for card in cards(keys_dir, n, first_serial=first)]


def qr_scans(keys_dir: Path, n: int, holders: int, now: int) -> list[dict[str, Any]]:
    signer = issuer(keys_dir, "ES256")
    phones = []
    for i in range(holders):
        device = generate_key("ES256")
        level1 = signer.issue(i.to_bytes(16, "big"), 19500101, f"W{i:08d}", "369900",
                              device.public_key(), iat=now - 60, exp=now + 86400)
        phones.append(Phone(level1, device, "ES256"))
    return [{"type": "essc_qr", "qr": phones[i % holders].qr(now)} for i in range(n)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=Path, required=True)
    p.add_argument("--kind", choices=["card", "qr"], default="card")
    p.add_argument("--n", type=int, default=60000)
    p.add_argument("--holders", type=int, default=2000, help="e-cards behind the QRs")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    now = int(time.time())
    creds = card_taps(args.keys, args.n, now) if args.kind == "card" else \
        qr_scans(args.keys, args.n, args.holders, now)
    secret = terminal_secret(args.keys)
    scanned = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()  # = the cryptogram's time
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as out:
        for cred in creds:
            body = json.dumps({"request_id": secrets.token_urlsafe(12), "scanned_at": scanned,
                               "credential": cred}, separators=(",", ":"))
            digest = hashlib.sha256(body.encode()).hexdigest()
            signature = hmac.new(secret, f"POST\n/v1/validations\n{now}\n{digest}".encode(),
                                 hashlib.sha256).hexdigest()
            out.write(f"{TERMINAL}\t{now}\t{signature}\t{body}\n")
    print(f"{len(creds)} {args.kind} requests in {args.out}")


if __name__ == "__main__":
    main()
