"""The worker and DAG integration suites, run again on PostgreSQL (one code path, two backends).

The test functions are the integration suites' own; this module's conftest swaps the database.
"""

from __future__ import annotations

from tests.integration.test_batch import *  # noqa: F403
from tests.integration.test_dag import *  # noqa: F403
from tests.integration.test_jobs_api import *  # noqa: F403
from tests.integration.test_worker import *  # noqa: F403
from tests.integration.test_worker import test_sqlite_synchronous_setting_applies

# SQLite-only: PRAGMAs. (The cross-process wake-up test runs here too: LISTEN/NOTIFY.)
del test_sqlite_synchronous_setting_applies
