"""The for_each suite, run again on PostgreSQL (this module's conftest swaps the database)."""

from __future__ import annotations

from tests.integration.test_for_each import *  # noqa: F403
