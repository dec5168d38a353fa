"""`config/offline.toml`: how long terminals may decide alone, and how uploads settle.

One frozen pydantic model, read once at start-up. A configuration folder without the
file has offline terminals disabled (`load_offline_config` answers None); a file that
is there but wrong stops start-up with a message naming the field and the bad value.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

import pydantic
from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

OFFLINE_FILE = "offline.toml"
# The store keeps a day's usage counters three days (state/store.py USAGE_TTL_S): an
# upload re-decided later would find them gone and over-count caps and capacity.
MAX_UPLOAD_DEADLINE_S = 2 * 86400

_Seconds = Annotated[int, Strict(), Field(ge=1)]


class OfflineConfigError(ValueError):
    """`offline.toml` cannot be used; the message names the file, field and value."""


class OfflineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_offline_age_s: Annotated[int, Strict(), Field(ge=60, le=7 * 86400)] = 86400
    upload_deadline_s: Annotated[int, Strict(), Field(ge=60, le=MAX_UPLOAD_DEADLINE_S)] = \
        MAX_UPLOAD_DEADLINE_S
    refresh_s: Annotated[int, Strict(), Field(ge=1, le=3600)] = 60
    card_allowance: Annotated[int, Strict(), Field(ge=0, le=100)] = 4
    calendar_days: Annotated[int, Strict(), Field(ge=1, le=31)] = 3
    batch_max_records: Annotated[int, Strict(), Field(ge=1, le=10_000)] = 500
    batch_max_bytes: Annotated[int, Strict(), Field(ge=1024, le=64 * 1024 * 1024)] = 1 << 20

    @model_validator(mode="after")
    def _uploads_outlive_bundles(self) -> OfflineConfig:
        if self.upload_deadline_s < self.max_offline_age_s:
            raise ValueError("upload_deadline_s must be at least max_offline_age_s: a "
                             "terminal offline for its whole bundle must still upload")
        return self


def load_offline_config(config_dir: Path) -> OfflineConfig | None:
    """The folder's offline.toml, or None if it has none (offline disabled)."""
    path = config_dir / OFFLINE_FILE
    if not path.exists():
        return None
    try:
        with path.open("rb") as file:
            raw = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OfflineConfigError(f"{OFFLINE_FILE}: cannot read: {exc}") from None
    try:
        return OfflineConfig.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: "
            f"{str(e['msg']).removeprefix('Value error, ')} (got {e.get('input')!r})"
            for e in exc.errors())
        raise OfflineConfigError(f"{OFFLINE_FILE}: {problems}") from None
