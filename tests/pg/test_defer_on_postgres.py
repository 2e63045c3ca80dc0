"""A claim undone for a busy host, on PostgreSQL (the same test; this package's conftest swaps
the database)."""

from __future__ import annotations

from tests.integration.test_defer import *  # noqa: F403
