"""The store behind an engine's facade, for tests that check what was written."""

from __future__ import annotations

from engine import Engine
from engine.store import Store


def store_of(engine: Engine) -> Store:
    return engine._store
