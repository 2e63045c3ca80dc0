"""An engine configuration for tests: fast polls, short leases, private targets allowed."""

from __future__ import annotations

from engine import EngineConfig


def make_config(db_url: str, **overrides: object) -> EngineConfig:
    values: dict[str, object] = {
        "db_url": db_url,
        "concurrency": 4,
        "poll_interval": 0.05,
        "allow_private_networks": True,
        "lease_seconds": 5.0,
        "shutdown_grace": 2.0,
        "cancel_check_interval": 0.1,
        "default_timeout": 10.0,
        "sqlite_synchronous": "NORMAL",
    }
    values.update(overrides)
    return EngineConfig(**values)  # type: ignore[arg-type]
