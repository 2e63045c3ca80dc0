"""The workflow suites, run again on PostgreSQL (this module's conftest swaps the database)."""

from __future__ import annotations

from tests.integration.test_workflows_api import *  # noqa: F403
