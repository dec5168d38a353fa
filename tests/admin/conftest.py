"""Operator API tests: the `service` fixture of tests/web with operator tokens we know.

`keys_dir` is overridden so that the key set's operator-tokens.json holds the SHA-256
of tokens chosen here (a real key set prints its tokens once and keeps only hashes).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.admin.client import ADMIN_TOKEN, VIEWER_TOKEN
from tests.web.conftest import config_dir, connection_limits, edit_config, front, service
from validator.config_folder import load_config
from validator.keygen import init_keyset

__all__ = ["config_dir", "connection_limits", "edit_config", "front", "keys_dir",
           "policy_json", "service"]


@pytest.fixture
def keys_dir(tmp_path: Path, config_dir: Path) -> Path:
    directory = tmp_path / "keys"
    config = load_config(config_dir)
    init_keyset(directory, region=config.city.region, terminal_ids=config.terminals)
    tokens = [("ops-admin", "admin", ADMIN_TOKEN), ("ops-viewer", "viewer", VIEWER_TOKEN)]
    (directory / "operator-tokens.json").write_text(json.dumps({"tokens": [
        {"name": name, "role": role, "sha256": hashlib.sha256(token.encode()).hexdigest()}
        for name, role, token in tokens
    ]}))
    return directory


@pytest.fixture
def policy_json(config_dir: Path) -> dict[str, Any]:
    """The live policy.toml as the JSON a what-if takes (a fresh copy to edit)."""
    with (config_dir / "policy.toml").open("rb") as file:
        return tomllib.load(file)
