"""Export a population's registry and block list, and load them into a running service.

Two ways in, both from protocol §5/§7:

- the operator API, with an admin token: `POST /v1/admin/holders:import` (NDJSON; a
  `PUT /v1/admin/holders/{ref}` per holder if the bulk endpoint is missing),
  `PUT /v1/admin/blocked-cards/{card_no}` and `PUT /v1/admin/blocked-holders/{ref}`;
- the command line, against a persistent store: `python -m validator holders load FILE
  --keys DIR --store URL` and `python -m validator blocks add card|holder ID --store URL`,
  run as subprocesses (the simulator never imports the validator).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import aiohttp

from terminals_sim.population import Holder

__all__ = ["Block", "LoadError", "Registration", "blocks_of", "load_via_api", "load_via_cli",
           "register", "registry_lines", "write_exports"]


class LoadError(RuntimeError):
    """The service refused the registry or the block list."""


@dataclass(frozen=True)
class Block:
    kind: Literal["card", "holder"]
    ident: str  # card_no or holder_ref
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.ident, "reason": self.reason}


@dataclass
class LoadSummary:
    holders: int = 0
    blocks: int = 0
    via: str = ""
    notes: list[str] = field(default_factory=list)


def registry_lines(holders: Iterable[Holder], *, by: Literal["holder_ref", "ssn"] = "holder_ref"
                   ) -> list[str]:
    """One NDJSON line per holder with registry categories (seniors need no entry:
    the service derives them from the birth date)."""
    lines = []
    for holder in holders:
        if holder.categories:
            ident = holder.ref if by == "holder_ref" else holder.ssn
            lines.append(json.dumps({by: ident,
                                     "categories": [c.to_json() for c in holder.categories]}))
    return lines


def blocks_of(holders: Iterable[Holder]) -> list[Block]:
    """Lost cards (挂失: their old card_no) and blocked holders."""
    found = []
    for holder in holders:
        found += [Block("card", card.card_no, "lost") for card in holder.lost_cards]
        if holder.blocked:
            found.append(Block("holder", holder.ref, "suspended"))
    return found


def write_exports(holders: list[Holder], folder: Path, *,
                  by: Literal["holder_ref", "ssn"] = "holder_ref") -> tuple[Path, Path]:
    """Write `registry.ndjson` and `blocks.ndjson` into `folder`; returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    registry, blocks = folder / "registry.ndjson", folder / "blocks.ndjson"
    registry.write_text("".join(line + "\n" for line in registry_lines(holders, by=by)), "utf-8")
    blocks.write_text("".join(json.dumps(b.to_json()) + "\n" for b in blocks_of(holders)), "utf-8")
    return registry, blocks


async def load_via_api(session: aiohttp.ClientSession, base_url: str, admin_token: str,
                       holders: list[Holder]) -> LoadSummary:
    """Push the registry and blocks through the operator API."""
    base = base_url.rstrip("/")
    auth = {"Authorization": f"Bearer {admin_token}"}
    summary = LoadSummary(via="operator API")
    lines = registry_lines(holders)
    body = "".join(line + "\n" for line in lines).encode()
    async with session.post(f"{base}/v1/admin/holders:import", data=body,
                            headers={**auth, "Content-Type": "application/x-ndjson"}) as resp:
        reply = await resp.text()
        status = resp.status
    if status in (404, 405):  # no bulk endpoint: one PUT per holder
        summary.notes.append("holders:import missing, used PUT per holder")
        await _put_all(session, auth, [
            (f"{base}/v1/admin/holders/{json.loads(line)['holder_ref']}",
             {"categories": json.loads(line)["categories"]}) for line in lines])
    elif status != 200:
        raise LoadError(f"holders:import answered {status}: {reply[:300]}")
    elif json.loads(reply).get("rejected"):
        raise LoadError(f"holders:import rejected lines: {reply[:300]}")
    summary.holders = len(lines)
    blocks = blocks_of(holders)
    await _put_all(session, auth, [
        (f"{base}/v1/admin/blocked-{b.kind}s/{b.ident}", {"reason": b.reason}) for b in blocks])
    summary.blocks = len(blocks)
    return summary


async def _put_all(session: aiohttp.ClientSession, auth: dict[str, str],
                   calls: list[tuple[str, dict[str, object]]], concurrency: int = 16) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def put(url: str, doc: dict[str, object]) -> None:
        async with gate, session.put(url, json=doc, headers=auth) as resp:
            if resp.status != 200:
                raise LoadError(f"PUT {url} answered {resp.status}: {(await resp.text())[:300]}")

    await asyncio.gather(*(put(url, doc) for url, doc in calls))


async def _run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "validator", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise LoadError(f"validator {' '.join(argv[:3])} failed ({proc.returncode}): "
                        f"{(err or out).decode(errors='replace')[-500:]}")


async def load_via_cli(holders: list[Holder], folder: Path, *, keys_dir: Path, store_url: str,
                       config_dir: Path | None = None) -> LoadSummary:
    """Write the exports into `folder` and load them with the validator's command line."""
    registry, _ = write_exports(holders, folder)
    summary = LoadSummary(via="validator CLI")
    extra = ["--config", str(config_dir)] if config_dir is not None else []
    await _run("holders", "load", str(registry), "--keys", str(keys_dir),
               "--store", store_url, *extra)
    summary.holders = len(registry_lines(holders))
    blocks = blocks_of(holders)
    # the CLI takes one block per process (~0.5 s to start): four at a time
    gate = asyncio.Semaphore(4)

    async def add(block: Block) -> None:
        async with gate:
            await _run("blocks", "add", block.kind, block.ident, "--reason", block.reason,
                       "--store", store_url)

    await asyncio.gather(*(add(b) for b in blocks))
    summary.blocks = len(blocks)
    return summary


@dataclass(frozen=True)
class Registration:
    """How (and whether) a population reached the service's registry and block lists."""

    loaded: bool
    message: str


async def register(session: aiohttp.ClientSession, base_url: str, holders: list[Holder], *,
                   admin_token: str | None, store_url: str | None, keys_dir: Path,
                   config_dir: Path | None, workdir: Path) -> Registration:
    """Load the registry and blocks by the operator API (with a token) or the CLI (with a
    persistent store URL). With neither, nothing is loaded: the service then knows no
    categories or blocks, and expectations must not assume any.

    Raises `LoadError` when a way in was given and failed.
    """
    if admin_token:
        summary = await load_via_api(session, base_url, admin_token, holders)
    elif store_url and store_url != "memory":
        summary = await load_via_cli(holders, workdir, keys_dir=keys_dir, store_url=store_url,
                                     config_dir=config_dir)
    else:
        return Registration(False, "registry not loaded (no --admin-token, no --store): "
                                   "registry scenarios skipped, categories not expected")
    notes = f" ({'; '.join(summary.notes)})" if summary.notes else ""
    return Registration(True, f"registry: {summary.holders} holders, {summary.blocks} blocks "
                              f"via {summary.via}{notes}")
