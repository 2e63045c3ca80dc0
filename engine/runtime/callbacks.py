"""Callback tasks at run time: the token of an attempt, and judging what a callback reports.

A token is 32 random bytes (256 bits, URL-safe base64); the store keeps only its sha256.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from engine.contracts import validate_instance
from engine.states import AttemptStatus, TaskStatus
from engine.store.callbacks import CallbackTarget
from engine.store.records import Outcome

CALLBACK_PATH = "/api/v1/callbacks/"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def callback_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{CALLBACK_PATH}{token}"


def judge_callback(
    target: CallbackTarget,
    *,
    status: str,
    output: Any = None,
    error: dict[str, Any] | None = None,
) -> Outcome:
    """The outcome a callback brings: its output checked against the task's output schema
    (a violation fails the task, not retried), or the failure it reports."""
    spec = target.spec
    fields: dict[str, Any] = {}
    if status == TaskStatus.SUCCEEDED.value:
        problems = validate_instance(spec.output_schema, output) if spec.output_schema else []
        if problems:
            fields["error"] = {
                "type": "output_invalid",
                "message": "the callback's output does not match the task's output schema",
                "errors": problems,
            }
        final = TaskStatus.FAILED if problems else TaskStatus.SUCCEEDED
        fields["response_body"] = output
    else:
        final = TaskStatus.FAILED
        reported = error or {}
        message = reported.get("message")
        fields["error"] = {
            "type": "callback_failed",
            "message": str(message) if message else "the callback reported a failure",
            "reported": reported,
        }
    return Outcome(
        task_id=target.task_id,
        job_id=target.job_id,
        attempt=target.attempt,
        solo=spec.solo,
        status=final,
        attempt_status=AttemptStatus(final.value),
        finished_at=time.time(),
        **fields,
    )
