"""Time creation-time validation of a generated 10,000-task DAG (fan-out 1 -> n-2 -> 1).

Every task names an InterfaceMaster defined inline in the document; every middle task reads the
root's output through templates (a whole-value reference, an indexed one, an interpolated one),
and the sink depends on every middle task and reads one of them. Run::

    .venv/bin/python -m benchmarks.validate_large [N_TASKS]

It prints the seconds ``validate_job`` took (parsing the document is timed apart).
"""

from __future__ import annotations

import sys
import time
from typing import Any

_ITEM = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
    "required": ["id"],
}
_INTERFACES: dict[str, Any] = {
    "Source": {
        "output_schema": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": _ITEM},
                "count": {"type": "integer", "minimum": 0},
                "tag": {"type": "string"},
            },
            "required": ["items", "count"],
        }
    },
    "Item": {
        "input_schema": {
            "type": "object",
            "properties": {
                "item": _ITEM,
                "count": {"type": "integer"},
                "note": {"type": "string"},
            },
            "required": ["item", "count"],
        },
        "output_schema": _ITEM,
    },
    "Sink": {"input_schema": {"type": "object", "properties": {"first": {"type": "integer"}}}},
}


def build_document(n_tasks: int = 10_000, url: str = "http://127.0.0.1:8000") -> dict[str, Any]:
    """The job document: ``root -> t1 .. t(n-2) -> sink``, templated and with interfaces."""
    middle = [f"t{i}" for i in range(1, n_tasks - 1)]
    tasks: list[dict[str, Any]] = [
        {"name": "root", "url": f"{url}/search?q={{{{ params.query }}}}", "interface": "Source"}
    ]
    for i, name in enumerate(middle):
        tasks.append(
            {
                "name": name,
                "method": "POST",
                "url": f"{url}/items/{i}",
                "interface": "Item",
                "body": {
                    "item": f"{{{{ tasks.root.output.items[{i}] }}}}",
                    "count": "{{ tasks.root.output.count }}",
                    "note": f"{{{{ tasks.root.output.tag }}}}-{i}",
                },
            }
        )
    tasks.append(
        {
            "name": "sink",
            "method": "POST",
            "url": f"{url}/sink",
            "interface": "Sink",
            "depends_on": middle,
            "body": {"first": "{{ tasks.t1.output.id }}"},
        }
    )
    return {
        "name": "validate-large",
        "params": {"query": "cats"},
        "validate_interfaces": True,
        "interfaces": _INTERFACES,
        "tasks": tasks,
    }


def main(argv: list[str]) -> None:
    from engine.errors import JobInvalid
    from engine.jobs.validation import validate_job
    from schemas.jobs import parse_job_document

    n_tasks = int(argv[0]) if argv else 10_000
    spec = parse_job_document(build_document(n_tasks))
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        report = validate_job(spec, masters={})
        outcome = f"valid, {len(report.warnings)} warnings"
    except JobInvalid as exc:
        outcome = f"invalid: {len(exc.errors)} errors, first: {exc.errors[0].message}"
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"validate_job({n_tasks:,} tasks): {wall:.3f} s ({cpu:.3f} s CPU; {outcome})")


if __name__ == "__main__":
    main(sys.argv[1:])
