"""Dashboard fixtures: the web tests' real `service`, plus the operator tokens of its keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web.conftest import config_dir, connection_limits, edit_config, front, service
from validator.config_folder import load_config
from validator.keygen import init_keyset

__all__ = ["config_dir", "connection_limits", "edit_config", "front", "keys_dir",
           "operator_tokens", "service"]


@pytest.fixture
def operator_tokens(tmp_path: Path, config_dir: Path) -> dict[str, str]:
    """{"admin": token, "viewer": token} of the key set that `keys_dir` holds."""
    config = load_config(config_dir)
    return init_keyset(tmp_path / "keys", region=config.city.region,
                       terminal_ids=config.terminals)


@pytest.fixture
def keys_dir(tmp_path: Path, operator_tokens: dict[str, str]) -> Path:
    return tmp_path / "keys"
