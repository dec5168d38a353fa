"""Signed validation requests for `wrk`, to measure the server without a Python client.

bench/openloop.py offers an open-loop rate; `wrk` (C, closed loop) costs a few µs per
request and, replaying requests prepared here, saturates the validator to show its
capacity (bench/ceiling.py).

    python -m bench.wrk_requests --keys DIR --kind card|qr|qr-sm2 --n 60000 [--holders 2000] \
        [--card-mode fresh|returning] [--cards 20000]
    taskset -c 1 wrk -t1 -c64 -d10s -s bench/wrk_replay.lua --latency http://127.0.0.1:8080

Every request is unique (fresh request_id, card counter or QR nonce) and signed with
an `X-Timestamp` of now: replay within 60 s (QR freshness) of preparing the file.
`--holders` sets how many e-cards the QRs come from, so level-1 cache hits are realistic;
`--card-mode returning` makes card taps those of `--cards` cards tapping in turn, each
counter one up per tap (bench/creds.py). wrk_replay.lua starts again from the first line
when it runs out: those requests are retries, answered again from their idempotency
record (checked before the counter, so never `replayed`, in either mode), which is
cheaper than a decision; bench/ceiling.py counts them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.ceiling import CONNECTIONS
from bench.creds import (
    CARD_MODES,
    CARDS,
    TERMINAL,
    Alg,
    ecard_holders,
    fresh_card_taps,
    qr_scans,
    random_serial,
    returning_card_taps,
    signed,
    terminal_secrets,
)

OUT = Path("bench-results/wrk-requests.tsv")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=Path, required=True)
    p.add_argument("--kind", choices=["card", "qr", "qr-sm2"], default="card",
                   help="qr: ES256 on both levels; qr-sm2: SM2 on both levels (§2.1)")
    p.add_argument("--n", type=int, default=60000)
    p.add_argument("--holders", type=int, default=2000, help="e-cards behind the QRs")
    p.add_argument("--card-mode", choices=CARD_MODES, default="fresh",
                   help="card taps: new cards' first taps, or --cards returning cards")
    p.add_argument("--cards", type=int, default=CARDS,
                   help=f"returning cards: more than wrk's {CONNECTIONS} connections")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if args.card_mode == "returning" and args.cards <= CONNECTIONS:  # see creds.CARDS
        p.error(f"--cards {args.cards}: more than wrk's {CONNECTIONS} connections, or a "
                "card's taps may overtake each other")
    now = int(time.time())
    terminals = [TERMINAL]
    if args.kind == "card" and args.card_mode == "returning":
        creds = returning_card_taps(args.keys, range(args.n), now, terminals,
                                    first_serial=random_serial(), pool=args.cards)
    elif args.kind == "card":
        creds = fresh_card_taps(args.keys, args.n, now, terminals, first_serial=random_serial())
    else:  # one algorithm on both levels: an all-ES256 or an all-SM2 QR
        alg: Alg = "SM2" if args.kind == "qr-sm2" else "ES256"
        holders = ecard_holders(args.keys, args.holders, now, issuer_alg=alg,
                                device_algs=(alg,))
        creds = qr_scans(holders, range(args.n), now, terminals)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as out:
        for r in signed(creds, terminal_secrets(args.keys), now):
            out.write(f"{r.terminal}\t{r.timestamp}\t{r.signature}\t{r.body.decode()}\n")
    mode = f" ({args.card_mode} cards)" if args.kind == "card" else ""
    print(f"{args.n} {args.kind} requests{mode} in {args.out}")


if __name__ == "__main__":
    main()
