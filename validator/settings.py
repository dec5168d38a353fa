"""Service settings: one frozen model, read once at start-up (from the command line)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    config_dir: Path = Path("config")
    keys_dir: Path = Path("keys/dev")
    store_url: str = "memory"  # "memory" | "redis://HOST:PORT/DB" | "rediscluster://H:P,…"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The lean terminal front (validator/web/terminal/front.py) on its own port;
    # None: not served.
    terminal_port: int | None = Field(default=None, ge=0, le=65535)
    level1_cache_size: int = Field(default=65536, ge=0)
    card_key_cache_size: int = Field(default=65536, ge=0)
    # Terminals whose HMAC context, keyed with their secret, is kept (web/terminal/auth.py).
    terminal_key_cache_size: int = Field(default=8192, ge=0)
    ledger_retention_days: int = Field(default=400, ge=1)
    retry_after_s: int = Field(default=1, ge=1)  # Retry-After on 503 store_unavailable
    # Requests in flight get this long to finish on SIGTERM; terminals give up after
    # 400 ms, a dashboard stream reconnects.
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    access_log: bool = False  # one line per request is too much at thousands per second
    # The operator dashboard and its live feed (one process per store reads the ledger);
    # off for validators that terminals reach, which still report their HTTP errors.
    dashboard: bool = True
