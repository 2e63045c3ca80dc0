"""Job documents the workloads submit: single calls (W1), the fan-out DAG (W2), and the large
DAG with interfaces that W3 validates (unless ``benchmarks.validate_large`` provides one)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

Doc = dict[str, Any]


def single_call(url: str) -> Doc:
    """W1: one GET, the seed's single-call form."""
    return {"method": "GET", "url": url}


def fan_out_fan_in(url: str, n_tasks: int) -> Doc:
    """W2: ``root -> t1..t(n-2) -> sink``; ``n_tasks`` counts all tasks (1,000 in the full run)."""
    middle = [f"t{i}" for i in range(1, n_tasks - 1)]
    tasks: list[Doc] = [{"name": "root", "url": url}]
    tasks += [{"name": name, "url": url, "depends_on": ["root"]} for name in middle]
    tasks.append({"name": "sink", "url": url, "depends_on": middle})
    return {"name": "w2", "tasks": tasks}


def chain(url: str, n_tasks: int) -> Doc:
    """``t0 -> t1 -> ... -> t(n-1)``: one call at a time, each hop a scheduling step."""
    tasks: list[Doc] = [{"name": "t0", "url": url}]
    tasks += [{"name": f"t{i}", "url": url, "depends_on": [f"t{i - 1}"]} for i in range(1, n_tasks)]
    return {"name": "chain", "tasks": tasks}


_ITEMS = {"type": "array", "items": {"type": "string"}}
_OUTPUT = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "items": _ITEMS, "message": {"type": "string"}},
    "required": ["id", "items"],
}
_INPUT = {
    "type": "object",
    "properties": {"ids": _ITEMS, "n": {"type": "integer", "minimum": 0}},
    "required": ["ids", "n"],
}


def layered_with_interfaces(url: str, n_tasks: int, width: int = 100) -> Doc:
    """W3's own generator: ``n_tasks`` in layers of ``width``; each task past the first layer
    takes two upstream outputs through templates and is checked against inline interfaces."""
    tasks: list[Doc] = []
    for i in range(n_tasks):
        layer, col = divmod(i, width)
        if layer == 0:
            tasks.append({"name": f"t{i}", "url": url, "interface": "Source"})
            continue
        a = f"t{(layer - 1) * width + col}"
        b = f"t{(layer - 1) * width + (col + 1) % width}"
        tasks.append(
            {
                "name": f"t{i}",
                "method": "POST",
                "url": url,
                "depends_on": [a, b],
                "interface": "Stage",
                "body": {
                    "ids": f"{{{{ tasks.{a}.output.items }}}}",
                    "n": f"{{{{ tasks.{b}.output.id }}}}",
                },
            }
        )
    return {
        "name": "w3",
        "validate_interfaces": True,
        "interfaces": {
            "Source": {"output_schema": _OUTPUT},
            "Stage": {"input_schema": _INPUT, "output_schema": _OUTPUT},
        },
        "tasks": tasks,
    }


def large_validation_doc(url: str, n_tasks: int) -> tuple[Doc, str]:
    """W3's document and the name of the generator that made it.

    ``benchmarks.validate_large.build_document`` (written beside the validator: fan-out
    ``1 -> n-2 -> 1``, every task with an inline interface and templated references) when it
    is there; this module's :func:`layered_with_interfaces` otherwise.
    """
    try:
        module = importlib.import_module("benchmarks.validate_large")
    except ImportError:
        module = None
    build: Callable[..., Any] | None = getattr(module, "build_document", None)
    if build is not None:
        base = url.rsplit("/", 1)[0]
        doc = build(n_tasks, url=base)
        if isinstance(doc, dict) and len(doc.get("tasks", [])) == n_tasks:
            return doc, "benchmarks.validate_large.build_document"
    return layered_with_interfaces(url, n_tasks), "benchmarks.jobdocs.layered_with_interfaces"
