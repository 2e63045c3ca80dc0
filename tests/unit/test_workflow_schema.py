"""The shipped editor schema matches the models, and accepts the shipped examples."""

from __future__ import annotations

from pathlib import Path

import jsonschema

from engine.jobs.loader import load_workflow_file
from schemas.export import SCHEMA_PATH, render, workflow_schema

EXAMPLES = sorted(Path(__file__).parents[2].joinpath("examples", "workflows").glob("*.yaml"))


def test_shipped_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text() == render(), "run: python -m schemas.export"


def test_examples_validate_against_the_schema() -> None:
    assert EXAMPLES
    validator = jsonschema.Draft202012Validator(workflow_schema())
    for path in EXAMPLES:
        _, loaded = load_workflow_file(path)
        errors = list(validator.iter_errors(loaded.document))
        assert not errors, (path.name, [e.message for e in errors][:3])
