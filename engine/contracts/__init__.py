"""Interface contracts: do a task's templates and body fit the JSON Schemas (draft-07) of its
interface and of its upstream tasks' outputs? Pure: no I/O, no store, no HTTP client.

:func:`check_task` is the creation-time report of one task, :func:`schema_problems` says whether
a schema is valid draft-07 and :func:`validate_instance` is the run-time check of a rendered
request body or a response body (all in ``checks``). Inside: ``compat`` decides producer/consumer
compatibility, ``paths`` finds the sub-schema at a path, ``inputs`` walks a body against an input
schema, ``keywords``/``shapes``/``tools`` are their parts, and ``memo`` remembers answers within
one validation run (:func:`memo_scope`).
"""

from engine.contracts.checks import (
    check_task,
    check_variables,
    for_each_items,
    schema_problems,
    validate_instance,
)
from engine.contracts.memo import memo_scope

__all__ = [
    "check_task",
    "check_variables",
    "for_each_items",
    "memo_scope",
    "schema_problems",
    "validate_instance",
]
