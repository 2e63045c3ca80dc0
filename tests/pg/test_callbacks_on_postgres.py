"""Callback tasks and completion webhooks, run again on PostgreSQL: the test functions are the
integration suites' own, and this directory's conftest swaps the database."""

from __future__ import annotations

from tests.integration.test_callbacks import *  # noqa: F403
