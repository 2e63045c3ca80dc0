"""``python -m schemas.export``: write ``schemas/workflow.schema.json``, the JSON Schema of a
workflow document, for editors (YAML language servers complete and check fields with it).

The file is generated from the Pydantic models; ``tests/unit/test_workflow_schema.py`` fails
when it drifts from them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from schemas.jobs import SingleCallSpec
from schemas.workflows import WorkflowDefinition

SCHEMA_PATH = Path(__file__).with_name("workflow.schema.json")


def workflow_schema() -> dict[str, Any]:
    # the DAG form with the fields of a stored definition (description, params_schema)
    schema = TypeAdapter(WorkflowDefinition | SingleCallSpec).json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "JobQueue workflow document (DAG form or single call)"
    return schema


def render() -> str:
    return json.dumps(workflow_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(render())
    print(f"wrote {SCHEMA_PATH}")
