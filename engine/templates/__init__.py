"""Jinja2 templates in job documents: sandboxed rendering and static analysis. No I/O, no store.

``sandbox`` is the environment every template renders in and the limits it enforces;
``rendering`` renders a task's request and ``when`` at run time, and at creation time checks
template syntax and finds each ``tasks.X...`` reference (a :class:`Reference`, from
``references``) without rendering anything.
"""

from engine.templates.references import Reference, VariableReference
from engine.templates.rendering import (
    TemplateError,
    build_context,
    evaluate_condition,
    find_references,
    find_variable_references,
    has_template,
    is_template,
    is_whole_expression,
    render_value,
    root_reads,
    syntax_problems,
)
from engine.templates.sandbox import SandboxEnvironment

__all__ = [
    "Reference",
    "SandboxEnvironment",
    "TemplateError",
    "VariableReference",
    "build_context",
    "evaluate_condition",
    "find_references",
    "find_variable_references",
    "has_template",
    "is_template",
    "is_whole_expression",
    "render_value",
    "root_reads",
    "syntax_problems",
]
