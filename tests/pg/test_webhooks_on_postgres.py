"""Completion webhooks on PostgreSQL: the integration suite's own tests, on a fresh database."""

from __future__ import annotations

from tests.integration.test_webhooks import *  # noqa: F403
from tests.integration.test_webhooks import (
    test_with_api_keys_deliveries_are_the_owners_and_callbacks_need_no_key,
)

# A REST server on its own SQLite file: nothing of it depends on the database.
del test_with_api_keys_deliveries_are_the_owners_and_callbacks_need_no_key
