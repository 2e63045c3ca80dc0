"""Persistence: the :class:`Store` interface, and behind it the tables, the one Alembic chain,
the group-commit writer and the only module that knows SQLite from PostgreSQL (``dialects``)."""

from engine.store.claims import Dispatch
from engine.store.maintenance import Canceled, Reaped
from engine.store.reads import JobFilter, decode_cursor, encode_cursor
from engine.store.records import ClaimedTask, Outcome, StoredTaskSpec, Transition
from engine.store.schedules import Fired
from engine.store.store import Store
from engine.store.submit import NewJob, Submitted
from engine.store.workflows import NewDefinition, SavedDefinition

__all__ = [
    "Canceled",
    "ClaimedTask",
    "Dispatch",
    "Fired",
    "JobFilter",
    "NewDefinition",
    "NewJob",
    "Outcome",
    "Reaped",
    "SavedDefinition",
    "Store",
    "StoredTaskSpec",
    "Submitted",
    "Transition",
    "decode_cursor",
    "encode_cursor",
]
