"""What a newcomer gets wrong starting the service: one line naming it, exit 2, no traceback.

A taken port (either one), the two ports the same, a missing or incomplete
configuration folder, a missing key set folder, a store URL that cannot be parsed; and
an unreachable store, which is only warned about: the service starts and says it is
not ready until the store answers.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.cli.support import free_port, key_set, listening, run_cli, serving, stderr_lines
from tests.web.harness import CONFIG_DIR


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    key_set(tmp_path / "keys")
    return tmp_path / "keys"


def serve(keys: Path, *args: str, store: str = "memory", config: Path = CONFIG_DIR) -> list[str]:
    """`serve` expected to refuse: its stderr lines, after checking exit 2 and no traceback."""
    result = run_cli("serve", "--config", str(config), "--keys", str(keys), "--store", store,
                     *args, check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    return stderr_lines(result)


def test_a_taken_port_is_named(keys: Path) -> None:
    with listening() as taken:
        assert serve(keys, "--port", str(taken)) == [
            f"error: --port {taken}: a service already answers on 127.0.0.1:{taken} "
            "(is another validator running?)"]


def test_a_taken_terminal_port_is_named(keys: Path) -> None:
    with listening() as taken:
        lines = serve(keys, "--port", str(free_port()), "--terminal-port", str(taken))
    assert lines == [f"error: --terminal-port {taken}: a service already answers on "
                     f"127.0.0.1:{taken} (is another validator running?)"]


def test_the_terminal_port_may_not_be_the_port(keys: Path) -> None:
    port = str(free_port())
    assert serve(keys, "--port", port, "--terminal-port", port) == [
        f"error: --terminal-port {port}: the same port as --port; "
        "each needs a port of its own"]


@pytest.mark.parametrize("option", ["--port", "--terminal-port"])
def test_workers_do_not_join_a_port_another_service_shares(
    keys: Path, redis_url: str, option: str
) -> None:
    # Several workers bind with SO_REUSEPORT, which would let them join a running
    # multi-worker service's port and take half its traffic: refused all the same.
    with listening(reuse_port=True) as taken:
        ports = {"--port": str(free_port()), "--terminal-port": str(free_port()),
                 option: str(taken)}
        lines = serve(keys, "--workers", "2", *(x for kv in ports.items() for x in kv),
                      store=redis_url)
    assert lines == [f"error: {option} {taken}: a service already answers on "
                     f"127.0.0.1:{taken} (is another validator running?)"]


def test_check_ports_says_what_serve_would(keys: Path) -> None:
    free = str(free_port())
    assert run_cli("check-ports", "--port", free, "--terminal-port", str(free_port())
                   ).returncode == 0
    with listening() as taken:
        result = run_cli("check-ports", "--port", free, "--terminal-port", str(taken),
                         check=False)
    assert result.returncode == 2
    assert stderr_lines(result) == [f"error: --terminal-port {taken}: a service already "
                                    f"answers on 127.0.0.1:{taken} (is another validator "
                                    "running?)"]


def test_a_host_that_is_not_ours_is_named(keys: Path) -> None:
    lines = serve(keys, "--host", "192.0.2.1", "--port", str(free_port()))  # TEST-NET-1
    assert lines == ["error: --host 192.0.2.1: not an address of this machine"]


def test_a_missing_config_folder_is_named(keys: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-config"
    assert serve(keys, "--port", "0", config=missing) == [
        f"error: --config {missing}: no such folder"]


def test_an_incomplete_config_folder_names_the_missing_files(keys: Path, tmp_path: Path) -> None:
    partial = tmp_path / "config"
    partial.mkdir()
    shutil.copy(CONFIG_DIR / "city.toml", partial)
    shutil.copy(CONFIG_DIR / "policy.toml", partial)
    assert serve(keys, "--port", "0", config=partial) == [
        f"error: calendar.toml: cannot read: not in {partial} "
        "(missing there: calendar.toml, terminals.toml)"]


def test_a_missing_key_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-keys"
    assert serve(missing, "--port", "0") == [f"error: --keys {missing}: no such folder"]


def test_a_store_url_that_cannot_be_parsed_is_named(keys: Path) -> None:
    [line] = serve(keys, "--port", "0", store="redis://127.0.0.1:sixthousand/0")
    assert line.startswith("error: --store redis://127.0.0.1:sixthousand/0: ")


def test_an_unreachable_store_is_warned_about_and_the_service_is_not_ready(keys: Path) -> None:
    closed = free_port()  # nothing listens there
    url = f"redis://:hunter2@127.0.0.1:{closed}/0"
    with serving(keys, "", url) as served:
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(served.url + "/readyz", timeout=5)
        answer.value.close()
        assert answer.value.code == 503
        with urllib.request.urlopen(served.url + "/healthz", timeout=5) as health:
            assert health.status == 200
    warnings = [line for line in served.log if "WARNING" in line]
    assert len(warnings) == 1, served.log
    assert f"store redis://:***@127.0.0.1:{closed}/0 unreachable" in warnings[0]
    assert "hunter2" not in "\n".join(served.log)
    assert "Traceback" not in "\n".join(served.log)


def test_a_reachable_store_brings_no_warning(keys: Path, redis_url: str) -> None:
    with serving(keys, "", redis_url) as served, \
            urllib.request.urlopen(served.url + "/readyz", timeout=5) as ready:
        assert ready.status == 200
    assert not [line for line in served.log if "WARNING" in line], served.log


def test_an_unknown_store_scheme_is_named_once(keys: Path) -> None:
    [line] = serve(keys, "--port", "0", store="foo://x")
    assert line.startswith("error: --store 'foo://x': expected 'memory'")


def test_add_card_key_refuses_what_the_key_set_loader_would(keys: Path, tmp_path: Path) -> None:
    before = (keys / "card-master-keys.json").read_text()
    for args, said in ((("--region", "abc", "--kv", "2"), "error: --region: expected 6 digits"),
                       (("--region", "369900", "--kv", "0"),
                        "error: --kv: expected an integer 1-255")):
        result = run_cli("keys", "add-card-key", str(keys), *args, check=False)
        assert result.returncode == 2 and result.stderr.startswith(said), result.stderr
    assert (keys / "card-master-keys.json").read_text() == before
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("keys", "add-card-key", str(empty), "--region", "369900", "--kv", "2",
                     check=False)
    assert (result.returncode, stderr_lines(result)) == (
        2, [f"error: {empty / 'trust-list.json'}: missing"])
    assert list(empty.iterdir()) == []
