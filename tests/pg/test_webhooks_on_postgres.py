"""Completion webhooks on PostgreSQL: the integration suite's own tests, on a fresh database."""

from __future__ import annotations

from tests.integration.test_webhooks import *  # noqa: F403
