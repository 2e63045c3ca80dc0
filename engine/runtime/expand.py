"""The attempt of a ``for_each`` task: render its list and write its instances (in chunks).

The instances then run as ordinary tasks; the parent ends when their count is complete (see
:mod:`engine.store.instances`). Returns the outcome that ends the parent at once (its ``when``
is false, its list does not render, is not a list or is too long), or ``None`` once expanded.
"""

from __future__ import annotations

from typing import Any

from engine.dag import SKIP_WHEN
from engine.runtime.attempt import ContextLoader, failed, skipped
from engine.store import ClaimedTask, Outcome, Store
from engine.store.instances import CHUNK
from engine.templates import (
    SandboxEnvironment,
    TemplateError,
    build_context,
    evaluate_condition,
    render_value,
)


async def expand_task(
    task: ClaimedTask,
    load: ContextLoader,
    env: SandboxEnvironment,
    store: Store,
    max_items: int,
) -> Outcome | None:
    spec = task.spec
    assert spec.for_each is not None
    context = build_context(**(await load(task)))
    pointer = f"/tasks/{spec.position}/for_each"
    try:
        if spec.when and not evaluate_condition(spec.when, context, env=env):
            return skipped(task, f"when: {spec.when} is false", SKIP_WHEN)
        items: Any = render_value(spec.for_each, context, pointer=pointer, env=env)
    except TemplateError as exc:
        return failed(task, {"type": "template", "message": str(exc)})
    if not isinstance(items, list):
        return failed(
            task,
            {
                "type": "for_each_not_list",
                "message": f"for_each rendered {type(items).__name__}, not a list ({pointer})",
            },
        )
    if len(items) > max_items:
        return failed(
            task,
            {
                "type": "too_many_items",
                "message": f"for_each rendered {len(items)} items; at most {max_items} are "
                "allowed (JOBQUEUE_MAX_MAP_ITEMS)",
            },
        )
    for start in range(0, max(len(items), 1), CHUNK):
        if not await store.expand(task, items[start : start + CHUNK], start, len(items)):
            return None  # the parent no longer runs this attempt (canceled, lease lost)
    return None
