"""Schedules that start stored workflow definitions, on PostgreSQL: the integration module
again (one code path, two backends); this package's conftest swaps the database."""

from __future__ import annotations

from tests.integration.test_scheduled_workflows import *  # noqa: F403
