"""bench/stages.py: every step runs on real inputs; callgrind's dumps are read right."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import creds
from bench.stages import count, main, read_dumps, stages
from validator.keygen import init_keyset


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stages") / "keys"
    init_keyset(path, region=creds.REGION, terminal_ids=[creds.TERMINAL])
    return path


@pytest.mark.parametrize("kind", ["card", "qr"])
def test_every_stage_runs_and_is_timed(kind: str, keys: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--timeit", "--n", "4", "--kind", kind, "--keys", str(keys)]) == 0
    out = capsys.readouterr().out
    for name, _ in stages(kind, 1, keys):
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert float(line.split()[-1].replace(",", "")) > 0, line


def test_callgrind_dumps_are_read_by_their_trigger(tmp_path: Path) -> None:
    (tmp_path / "callgrind.out.1").write_text(
        "version: 1\ndesc: Trigger: Client Request: dump parse-the-body\n"
        "events: Ir\nsummary: 48127000\n")
    (tmp_path / "callgrind.out.2").write_text(
        "desc: Trigger: dump commit-keys\nsummary: 16641000\n")
    (tmp_path / "callgrind.out.3").write_text("summary: 1\n")  # at exit: no dump name
    assert read_dumps(tmp_path) == {"parse-the-body": 48127000, "commit-keys": 16641000}


def test_without_valgrind_the_message_says_what_to_do(
        keys: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(keys))  # a directory with no valgrind in it
    with pytest.raises(SystemExit, match="valgrind not found"):
        count("card", 1, keys)
