"""A workflow file's ``schedule:`` section -> the fields of the schedule named by the file.

::

    name: nightly-report
    schedule: {cron: "0 6 * * 1-5", timezone: Europe/Berlin, overlap: skip, catch_up: latest}
    tasks: [...]

The rest of the file is the schedule's job document (``jobqueue run`` and ``submit`` ignore
the ``schedule:`` section). A schedule that starts a stored definition names it in the section
(``workflow: {name, version, params}``) and the file holds nothing else but ``name``.
Problems carry file lines: the job's under their own place, the schedule's under ``/schedule``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.errors import JobInvalid, Problem
from engine.jobs.loader import LoadedDocument, WorkflowFileError, attach_marks, load_yaml_bytes
from engine.jsonpointer import join_pointer
from schemas.schedules import ScheduleIn

SECTION = "schedule"
#: where the fields of a schedule sit in its file (the job is the file itself)
_IN_FILE = {"name": "/name", "job": ""}


def without_schedule(loaded: LoadedDocument) -> LoadedDocument:
    """The job document of a file, its ``schedule:`` section left out."""
    document = loaded.document
    if isinstance(document, dict) and SECTION in document:
        rest = {k: v for k, v in document.items() if k != SECTION}
        return replace(loaded, document=rest)
    return loaded


def load_schedule_file(path: str | Path) -> tuple[dict[str, Any], LoadedDocument]:
    """The schedule fields a file describes (``ScheduleIn``-checked) and the loaded file.

    Raises :class:`WorkflowFileError` (unreadable, or no ``schedule:`` / ``name``) or
    :class:`JobInvalid` with file lines."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise WorkflowFileError(f"cannot read: {exc.strerror or exc}", source=source) from None
    loaded = load_yaml_bytes(raw, source=source)
    document = loaded.document
    section = document.get(SECTION) if isinstance(document, dict) else None
    if not isinstance(section, dict):
        raise WorkflowFileError(
            "a scheduled workflow needs a `schedule:` mapping (cron, timezone, overlap, catch_up)",
            source=source,
        )
    job = without_schedule(loaded).document
    fields = {**section, "name": document.get("name")}
    if "workflow" not in section or set(job) - {"name"}:
        fields["job"] = job  # a stored definition's file holds only `name` and `schedule:`
    try:
        checked = ScheduleIn.model_validate(fields)
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors(include_url=False)]
        raise JobInvalid(attach_marks(problems, loaded.marks, single_call=False)) from None
    return checked.model_dump(mode="json"), loaded


def place_in_schedule_file(problems: list[Problem], loaded: LoadedDocument) -> list[Problem]:
    """Problems of :meth:`Engine.apply_schedule` placed in the file: ``/job/tasks/0`` is the
    file's ``/tasks/0``, ``/cron`` its ``/schedule/cron``."""
    placed = []
    for p in problems:
        head, _, rest = p.location.lstrip("/").partition("/")
        if head == "job":
            location = f"/{rest}" if rest else ""
        elif head in _IN_FILE:
            location = _IN_FILE[head]
        else:
            location = f"/{SECTION}/{head}" + (f"/{rest}" if rest else "")
        placed.append(replace(p, location=location, line=None, column=None))
    single = loaded.single_call
    return attach_marks(placed, loaded.marks, single_call=single)


def _problem(error: Any) -> Problem:
    loc = list(error.get("loc", ()))
    head = str(loc[0]) if loc else ""
    prefix = _IN_FILE.get(head)
    if prefix is None:
        pointer = join_pointer([SECTION, *loc]) if loc else f"/{SECTION}"
    else:
        pointer = prefix + join_pointer(loc[1:])
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return Problem(code="invalid_field", location=pointer, message=message)
