"""A template's reference to an upstream task, as found by ``engine.templates.rendering``.

Shared by the graph (a reference implies an edge) and the interface checker (a reference names a
path in the upstream's output schema), so it lives apart from both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PathPart = str | int


@dataclass(frozen=True, kw_only=True)
class Reference:
    #: the upstream task named in ``tasks.<task>...``
    task: str
    #: what of the upstream is read: ``output``, ``status_code`` or ``headers`` of ``tasks.X``
    #: (``None`` when the template reads ``tasks.X`` itself or an unknown attribute)
    attr: Literal["output", "status_code", "headers"] | None
    #: the constant path after ``output`` (``tasks.X.output.results[0].id`` -> ("results", 0, "id"))
    path: tuple[PathPart, ...]
    #: JSON pointer into the submitted job of the string holding the template
    pointer: str
    #: position inside the task's ``body`` when the string is in the body, else ``None``
    body_path: tuple[PathPart, ...] | None
    #: the string is exactly one ``{{ expr }}`` and ``expr`` is this plain reference, no filter or
    #: operator: the rendered value is the upstream value itself, typed
    whole: bool
    #: the path has a part that is not a constant (``output.items[i]``) and stops there
    dynamic: bool = False


@dataclass(frozen=True, kw_only=True)
class VariableReference:
    """A template's read of a context variable other than ``tasks``: ``params.query``,
    ``item.id``. Typed at creation time when the variable has a schema (a definition's
    ``params_schema``, a ``for_each`` source's ``items``)."""

    #: the variable: ``params`` or ``item``
    root: str
    #: the constant path after the variable
    path: tuple[PathPart, ...]
    #: JSON pointer into the submitted job of the string holding the template
    pointer: str
    #: position inside the task's ``body`` when the string is in the body, else ``None``
    body_path: tuple[PathPart, ...] | None
    #: the string is exactly one ``{{ variable.path }}``: the rendered value is the value itself
    whole: bool
    #: the path has a part computed at run time and stops there
    dynamic: bool = False
