"""The sub-workflow suite, run again on PostgreSQL (this module's conftest swaps the database)."""

from __future__ import annotations

from tests.integration.test_subworkflows import *  # noqa: F403
