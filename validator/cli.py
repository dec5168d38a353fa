"""The command line (protocol §7): `python -m validator keys|serve|holders|blocks|settlement`.

Input is checked by the same code as the operator API's (`validator.holders.changes`,
`validator.holders.registry`, `validator.ledger.settlement`), so a command refuses
what the API refuses, for the same reason. A refusal is one line `error: ...` on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from pydantic import ValidationError

from validator.audit import CLI
from validator.config_folder import ConfigError, load_config
from validator.holders import changes
from validator.holders.registry import InvalidHolder, parse_date
from validator.keygen import add_card_master_key, init_keyset
from validator.keyset import KeySetError, check_card_key_id, load_keyset
from validator.ledger.settlement import InvalidOperator, parse_operator, settle
from validator.offline.config import load_offline_config
from validator.offline.finality import finality
from validator.ports import PortUnavailable, check
from validator.settings import Settings
from validator.state import StoreUrlError, open_store
from validator.state.store import Store, StoreUnavailable

FILE_CHUNK_BYTES = 64 * 1024
# The API's field names, as the options that carry them here are called.
_OPTION_OF_FIELD = {"until": "--until", "reason": "--reason", "operator": "--operator"}


class UsageError(Exception):
    """A command-line mistake; printed without a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        result: int = args.run(args)
        return result
    except (UsageError, ConfigError, KeySetError, StoreUrlError, StoreUnavailable,
            PortUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (InvalidHolder, InvalidOperator) as exc:  # the API's message, its field an option
        field, sep, rest = str(exc).partition(": ")
        print(f"error: {_OPTION_OF_FIELD.get(field, field)}{sep}{rest}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m validator", description=__doc__)
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    keys = sub.add_parser("keys", help="key sets (protocol §6)").add_subparsers(required=True)
    k = keys.add_parser("init", help="write a new key set; prints the operator tokens once")
    k.add_argument("dir", type=Path)
    k.add_argument("--config", type=Path, default=Path("config"))
    k.set_defaults(run=_keys_init)
    k = keys.add_parser("add-card-key", help="add a card master key version (rotation)")
    k.add_argument("dir", type=Path)
    k.add_argument("--region", required=True)
    k.add_argument("--kv", type=int, required=True)
    k.set_defaults(run=_keys_add_card_key)

    s = sub.add_parser("serve", help="run the validation service")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--keys", type=Path, required=True)
    s.add_argument("--store", required=True,
                   help="memory | redis://HOST:PORT/DB | rediscluster://HOST:PORT[,HOST:PORT...]")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--terminal-port", type=int, default=None, metavar="N",
                   help="also serve POST /v1/validations alone on port N, through the lean "
                        "terminal front (0: any free port); --port keeps serving it too")
    s.add_argument("--access-log", action="store_true")
    s.add_argument("--no-dashboard", action="store_true",
                   help="serve no operator dashboard and run no live feed, for validators "
                        "that terminals reach (HTTP errors still reach the board)")
    s.add_argument("--ledger-retention-days", type=int, default=400, metavar="DAYS",
                   help="keep each local day's ledger this long after its last record "
                        "(default 400; both stores)")
    s.add_argument("--workers", type=int, default=1,
                   help="worker processes sharing the port (SO_REUSEPORT); default 1")
    s.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                   help="event loop; auto = uvloop when installed")
    s.set_defaults(run=_serve)

    c = sub.add_parser("check-ports", help="exit 2, naming the port, if serve could not "
                                          "listen on these ports (`make run` asks first)")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, default=8080)
    c.add_argument("--terminal-port", type=int, default=None, metavar="N")
    c.set_defaults(run=_check_ports)

    h = sub.add_parser("holders", help="eligibility registry").add_subparsers(required=True)
    k = h.add_parser("load", help="load NDJSON lines {ssn|holder_ref, categories}")
    k.add_argument("file", type=Path)
    k.add_argument("--keys", type=Path, required=True)
    k.add_argument("--store", required=True)
    k.add_argument("--config", type=Path, default=Path("config"))
    k.set_defaults(run=_holders_load)

    b = sub.add_parser("blocks", help="block lists (挂失)")
    b.add_argument("action", choices=["add", "remove"])
    b.add_argument("kind", choices=["card", "holder"])
    b.add_argument("ident", metavar="ID")
    b.add_argument("--reason")
    b.add_argument("--until", help="YYYY-MM-DD, inclusive; not before today")
    b.add_argument("--store", required=True)
    b.add_argument("--config", type=Path, default=Path("config"),
                   help="for the city's date today, which --until may not be before")
    b.set_defaults(run=_blocks)

    r = sub.add_parser("settlement", help="a local day's settlement report, from the ledger")
    r.add_argument("--date", required=True, help="YYYY-MM-DD, the city's local date")
    r.add_argument("--store", required=True)
    r.add_argument("--config", type=Path, default=Path("config"))
    r.add_argument("--operator", help="only this operator id")
    r.add_argument("--csv", action="store_true", help="the rows as CSV instead of JSON")
    r.set_defaults(run=_settlement)
    return p


def _folder(path: Path, option: str, needed_for: str = "") -> Path:
    """`path` if it is a folder; else a refusal naming the option that gave it."""
    if not path.is_dir():
        named = f"{option} {path}" if option else str(path)
        raise UsageError(f"{named}: " + ("not a folder" if path.exists()
                                         else "no such folder") + needed_for)
    return path


def _keys_init(args: argparse.Namespace) -> int:
    config = load_config(_folder(args.config, "--config"))
    tokens = init_keyset(args.dir, region=config.city.region, terminal_ids=config.terminals)
    print(f"key set written to {args.dir}")
    print("operator tokens (shown once, store them now):")
    for name, token in tokens.items():
        print(f"  {name}: {token}")
    return 0


def _keys_add_card_key(args: argparse.Namespace) -> int:
    load_keyset(_folder(args.dir, ""))  # a key set in the §6 layout, before adding to it
    check_card_key_id(args.region, args.kv, "--region", "--kv")
    add_card_master_key(args.dir, region=args.region, kv=args.kv)
    print(f"card master key region {args.region} kv {args.kv} added to {args.dir}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from validator.serve import serve

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.workers > 1 and args.store == "memory":
        raise UsageError("--store memory lives in one process: --workers needs redis:// or rediscluster://")
    try:
        settings = Settings(config_dir=_folder(args.config, "--config"),
                            keys_dir=_folder(args.keys, "--keys"), store_url=args.store,
                            host=args.host, port=args.port, terminal_port=args.terminal_port,
                            access_log=args.access_log, dashboard=not args.no_dashboard,
                            ledger_retention_days=args.ledger_retention_days)
    except ValidationError as exc:  # a number out of range: name the option, no traceback
        raise UsageError("; ".join(
            f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg'].lower()}"
            for e in exc.errors())) from None
    return serve(settings, workers=args.workers, loop=args.loop)


def _check_ports(args: argparse.Namespace) -> int:
    """`serve`'s own port check, alone: for scripts that start it, `make run` first."""
    check(args.host, {"--port": args.port, "--terminal-port": args.terminal_port})
    return 0


async def _persistent_store(url: str) -> Store:
    if url == "memory":
        raise UsageError("the memory store lives inside a running service; "
                         "use --store redis://HOST:PORT/DB")
    try:
        return await open_store(url)
    except ValueError as exc:  # StoreUrlError, or a URL redis-py cannot take apart
        raise StoreUrlError(str(exc) if isinstance(exc, StoreUrlError)
                            else f"--store {url!r}: {exc}") from None


def _holders_load(args: argparse.Namespace) -> int:
    """`holders:import` from a file: the same parser, the same line limit, one report."""
    keys = load_keyset(_folder(args.keys, "--keys"))
    engine = load_config(_folder(args.config, "--config")).engine
    if not args.file.is_file():
        raise UsageError(f"{args.file}: no such file")

    async def chunks() -> AsyncIterator[bytes]:
        with args.file.open("rb") as f:
            while chunk := f.read(FILE_CHUNK_BYTES):
                yield chunk

    async def run() -> int:
        store = await _persistent_store(args.store)
        try:
            today = engine.local_date(time.time())
            report = await changes.import_holders(store, CLI, chunks(), keys.pepper, today,
                                                  time.time())
        finally:
            await store.close()
        print(f"created {report.created}, updated {report.updated}, "
              f"rejected {len(report.rejected)}, blank {report.blank}")
        for line, error in report.rejected:
            print(f"  line {line}: {error}", file=sys.stderr)
        return 1 if report.rejected else 0

    return asyncio.run(run())


def _blocks(args: argparse.Namespace) -> int:
    """`PUT|DELETE /v1/admin/blocked-{cards,holders}/ID`, with the API's own checks."""
    ident = changes.parse_block_id(args.kind, args.ident)
    block = None
    if args.action == "add":
        body = {k: v for k, v in (("reason", args.reason), ("until", args.until))
                if v is not None}
        # The city's date, as the API's: only an --until needs it (and the config).
        config = (_folder(args.config, "--config", " (the city's date, for --until)")
                  if args.until is not None else None)
        today = (load_config(config).engine.local_date(time.time()) if config is not None
                 else dt.date.min)
        block = changes.parse_block(body, today)
    elif args.reason is not None or args.until is not None:
        raise UsageError("--reason and --until go with `blocks add`")

    async def run() -> int:
        store = await _persistent_store(args.store)
        now = time.time()
        try:
            # Through `changes`, so the audit log records the change (who = "cli").
            if block is not None:
                old = await changes.put_block(store, CLI, args.kind, ident, block, now)
                print(f"{args.kind} {ident} blocked" + (" (updated)" if old else ""))
                return 0
            removed = await changes.delete_block(store, CLI, args.kind, ident, now)
            print(f"{args.kind} {ident} " + ("unblocked" if removed else "was not blocked"))
            return 0 if removed else 1
        finally:
            await store.close()

    return asyncio.run(run())


def _settlement(args: argparse.Namespace) -> int:
    """The same report as `GET /v1/settlement`: JSON (as the API answers) or CSV."""
    day = parse_date(args.date, "--date")
    operator = None if args.operator is None else parse_operator(args.operator)
    config_dir = _folder(args.config, "--config")
    city = load_config(config_dir).city
    operators = {o.id for o in city.operators}
    offline = load_offline_config(config_dir)
    if operator is not None and operator not in operators:
        # Not an error: a past day may name an operator the city has since dropped.
        print(f"warning: {operator} is not an operator of {args.config}", file=sys.stderr)

    async def run() -> int:
        store = await _persistent_store(args.store)
        try:
            report = await settle(store, day, operator)
        finally:
            await store.close()
        if args.csv:
            sys.stdout.write(report.as_csv())
        else:
            final = finality(day, city.time_zone,
                             offline.upload_deadline_s if offline else None, time.time())
            print(json.dumps(report.as_dict() | final, indent=2, ensure_ascii=False))
        return 0

    return asyncio.run(run())
