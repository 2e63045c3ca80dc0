"""The delivery guarantees (attempt fence, heartbeat, surviving transient database errors), run
again on PostgreSQL: the test functions are tests/integration/test_guarantees.py's own, and this
directory's conftest swaps the database for a fresh PostgreSQL one."""

from __future__ import annotations

from tests.integration.test_guarantees import *  # noqa: F403
