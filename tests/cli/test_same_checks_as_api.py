"""The command line refuses what the operator API refuses, with the API's own message.

Each bad input goes to a running service over HTTP and to `python -m validator` on the
same store; the CLI must answer exit 2 and the API's `detail` (its field named as the
option that carries it), and change nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.support import Served, key_set, run_cli, serving, stderr_lines

CARD = "A12345678"
REF = "0123456789abcdef0123456789abcdef"
OPTION = {"until": "--until", "reason": "--reason", "operator": "--operator", "date": "--date"}


@pytest.fixture
def served(tmp_path: Path, redis_url: str) -> Iterator[Served]:
    keys = tmp_path / "keys"
    token = key_set(keys)
    with serving(keys, token, redis_url) as running:
        yield running


def as_cli(detail: str) -> str:
    field, sep, rest = detail.partition(": ")
    return f"error: {OPTION.get(field, field)}{sep}{rest}"


def refused_alike(served: Served, method: str, path: str, body: dict[str, str] | None,
                  *cli: str) -> str:
    status, answer = served.call(method, path,
                                 None if body is None else json.dumps(body).encode())
    assert status == 400, answer
    result = run_cli(*cli, check=False)
    assert (result.returncode, stderr_lines(result)) == (2, [as_cli(answer["detail"])])
    return str(answer["detail"])


def blocks_path(kind: str, ident: str) -> str:
    return f"/v1/admin/blocked-{'cards' if kind == 'card' else 'holders'}/{ident}"


@pytest.mark.parametrize(("kind", "ident", "body", "said"), [
    ("card", "bad", {}, "card_no: expected 9 characters"),
    ("card", "a12345678", {}, "card_no: expected 9 characters"),
    ("holder", "XYZ", {}, "holder_ref: expected 32 lowercase hex"),
    ("holder", REF.upper(), {}, "holder_ref: expected 32 lowercase hex"),
    ("card", CARD, {"until": "2020-01-01"}, "until: 2020-01-01 is before today"),
    ("card", CARD, {"until": "2030-02-30"}, "until: '2030-02-30' is not a real date"),
    ("card", CARD, {"until": "31.12.2030"}, "until: expected YYYY-MM-DD"),
    ("holder", REF, {"reason": ""}, "reason: expected a non-empty string"),
    ("card", CARD, {"reason": "x" * 201}, "reason: expected a non-empty string"),
])
def test_blocks_add_refuses_what_put_refuses(
    served: Served, redis_url: str, kind: str, ident: str, body: dict[str, str], said: str
) -> None:
    options = [x for field, value in body.items() for x in (OPTION[field], value)]
    detail = refused_alike(served, "PUT", blocks_path(kind, ident), body,
                           "blocks", "add", kind, ident, *options, "--store", redis_url)
    assert detail.startswith(said)
    assert served.call("GET", blocks_path(kind, ident))[0] in (400, 404)  # nothing blocked
    assert served.call("GET", "/v1/admin/audit")[1] == {"entries": []}


def test_blocks_remove_refuses_what_delete_refuses(served: Served, redis_url: str) -> None:
    refused_alike(served, "DELETE", blocks_path("card", "bad"), None,
                  "blocks", "remove", "card", "bad", "--store", redis_url)


def test_what_the_api_takes_the_cli_takes(served: Served, redis_url: str) -> None:
    until = (dt.date.today() + dt.timedelta(days=400)).isoformat()
    added = run_cli("blocks", "add", "card", CARD, "--reason", "lost", "--until", until,
                    "--store", redis_url)
    assert added.stdout == f"card {CARD} blocked\n"
    assert served.call("GET", blocks_path("card", CARD)) == (
        200, {"card_no": CARD, "reason": "lost", "until": until})


def test_settlement_refuses_what_the_api_refuses(served: Served, redis_url: str) -> None:
    refused_alike(served, "GET", "/v1/settlement?date=2026-1-1", None,
                  "settlement", "--date", "2026-1-1", "--store", redis_url)
    refused_alike(served, "GET", "/v1/settlement?date=2026-01-01&operator=op", None,
                  "settlement", "--date", "2026-01-01", "--operator", "op",
                  "--store", redis_url)


def test_holders_load_rejects_the_lines_holders_import_rejects(
    served: Served, redis_url: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    good = json.dumps({"holder_ref": REF, "categories": [{"code": "veteran"}]})
    lines = [
        good,
        "",
        '{"holder_ref": "' + "a" * 70_000 + '", "categories": []}',  # over 64 KiB
        json.dumps({"holder_ref": REF, "categories": [{"code": "disabled", "grade": 9}]}),
        json.dumps({"holder_ref": REF.upper(), "categories": []}),
        json.dumps({"ssn": "36990019500101001X", "categories": []}),
        json.dumps({"categories": []}),
        "[1, 2]",
        good,  # no final newline
    ]
    body = "\n".join(lines)
    source = tmp_path / "holders.ndjson"
    source.write_text(body)
    status, api = served.call("POST", "/v1/admin/holders:import", body.encode())
    assert status == 200
    result = run_cli("holders", "load", str(source), "--keys", str(keys), "--store", redis_url,
                     check=False)
    assert result.returncode == 1
    cli = [line.strip().split(": ", 1) for line in stderr_lines(result)]
    assert [[f"line {r['line']}", r["error"]] for r in api["rejected"]] == cli
    assert [r["line"] for r in api["rejected"]] == [3, 4, 5, 6, 7, 8]
    assert api["rejected"][0]["error"] == "line longer than 65536 bytes"
    # The API's import created the holder; the CLI's, of the same lines, updated it twice.
    assert (api["created"], api["updated"]) == (1, 1)
    assert result.stdout == "created 0, updated 2, rejected 6, blank 1\n"


def test_only_an_until_needs_the_config_for_the_citys_date(
    redis_url: str, tmp_path: Path
) -> None:
    # Run where there is no config/: a block without --until needs none.
    plain = run_cli("blocks", "add", "card", CARD, "--store", redis_url, cwd=tmp_path)
    assert plain.stdout == f"card {CARD} blocked\n"
    dated = run_cli("blocks", "add", "card", CARD, "--until", "2099-01-01",
                    "--store", redis_url, cwd=tmp_path, check=False)
    assert (dated.returncode, stderr_lines(dated)) == (
        2, ["error: --config config: no such folder (the city's date, for --until)"])
    refused = run_cli("blocks", "remove", "card", CARD, "--reason", "found",
                      "--store", redis_url, check=False)
    assert (refused.returncode, stderr_lines(refused)) == (
        2, ["error: --reason and --until go with `blocks add`"])
