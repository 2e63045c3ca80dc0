"""Fair claims and settling from the tasks that ended, run again on PostgreSQL."""

from __future__ import annotations

from tests.integration.test_fair_claims import *  # noqa: F403
