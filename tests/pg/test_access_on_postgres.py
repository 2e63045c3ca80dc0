"""Owner-filtered reads, the audit log and hashed keys, run again on PostgreSQL."""

from __future__ import annotations

from tests.integration.test_access_engine import *  # noqa: F403
