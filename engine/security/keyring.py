"""The key ring: which principal a bearer key stands for.

Keys from the environment are held in memory. Keys in the database are read as one small
snapshot of the active keys, re-read when it is older than ``refresh_seconds`` (and, on a key
it does not know, at most once a second): a key created or revoked by another process (``jobqueue
keys ...``) takes effect there within that time; in this process at once.
"""

from __future__ import annotations

import asyncio
import time

from engine.security.keys import Principal, hash_key
from engine.store import Store


class KeyRing:
    def __init__(
        self, store: Store, env_keys: dict[str, Principal], *, refresh_seconds: float = 2.0
    ) -> None:
        self._store = store
        self._env = env_keys
        self._refresh = refresh_seconds
        self._db: dict[str, Principal] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def env_principals(self) -> list[Principal]:
        return sorted(self._env.values(), key=lambda p: p.name)

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def _load(self, max_age: float) -> None:
        if time.monotonic() - self._loaded_at <= max_age:
            return
        async with self._lock:
            if time.monotonic() - self._loaded_at <= max_age:
                return
            rows = await self._store.keys(active_only=True)
            self._db = {r.key_hash: Principal(name=r.name, admin=r.admin) for r in rows}
            self._loaded_at = time.monotonic()

    async def enabled(self) -> bool:
        """Whether any key is configured: without one, the API is open."""
        if self._env:
            return True
        await self._load(self._refresh)
        return bool(self._db)

    async def authenticate(self, key: str) -> Principal | None:
        digest = hash_key(key)
        found = self._env.get(digest)
        if found is not None:
            return found
        await self._load(self._refresh)
        found = self._db.get(digest)
        if found is None:
            await self._load(min(self._refresh, 1.0))
            found = self._db.get(digest)
        return found
