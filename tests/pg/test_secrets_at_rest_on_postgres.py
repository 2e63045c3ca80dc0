"""Encryption at rest on PostgreSQL: the raw rows, read as text by a plain asyncpg connection,
hold no plaintext secret; rotation and a wrong key behave as on SQLite (the same tests; this
package's conftest swaps the database)."""

from __future__ import annotations

from tests.integration.test_secrets_at_rest import *  # noqa: F403
