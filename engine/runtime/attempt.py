"""One attempt of one task: render, validate the input, call, validate the output, decide.

:func:`run_attempt` turns a claimed task into an :class:`~engine.store.records.Outcome`; it never
writes. The worker records the outcome (fenced on the attempt number) through the store.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from engine.contracts import validate_instance
from engine.dag import SKIP_WHEN, RetryPolicy, policy_from_fields
from engine.http import Executor, HttpError, HttpRequest, HttpResponse, retry_after_seconds
from engine.http.host_limits import HostLimiter
from engine.masking import mask_headers
from engine.states import AttemptStatus, TaskStatus
from engine.store.maintenance import expired_error
from engine.store.records import ClaimedTask, Outcome
from engine.templates import (
    SandboxEnvironment,
    TemplateError,
    build_context,
    evaluate_condition,
    render_value,
)

#: loads (job params/name, upstream outputs) for rendering; called only for templated tasks
ContextLoader = Callable[[ClaimedTask], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, kw_only=True)
class CallbackHandle:
    """What a callback task's templates see as ``callback``: where to report back, and the
    token (a capability: whoever holds it may finish the task)."""

    url: str
    token: str


@dataclass(frozen=True, kw_only=True)
class AttemptSettings:
    default_timeout: float
    secret_headers: frozenset[str]
    #: the sandbox every template of this worker renders in (its output cap is configured)
    templates: SandboxEnvironment
    #: per-host caps and pauses of this process (``JOBQUEUE_HOST_LIMITS``, ``Retry-After``)
    hosts: HostLimiter | None = None


def _outcome(task: ClaimedTask, status: TaskStatus, **fields: Any) -> Outcome:
    attempt_status = fields.pop("attempt_status", None)
    if attempt_status is None:
        attempt_status = (
            AttemptStatus.SUCCEEDED if status is TaskStatus.SUCCEEDED else AttemptStatus.FAILED
        )
    return Outcome(
        task_id=task.id,
        job_id=task.job_id,
        attempt=task.attempt,
        solo=task.solo,
        status=status,
        attempt_status=attempt_status,
        finished_at=time.time(),
        parent_id=task.spec.parent_id,
        **fields,
    )


def failed(task: ClaimedTask, error: dict[str, Any], **fields: Any) -> Outcome:
    return _outcome(task, TaskStatus.FAILED, error=error, **fields)


def skipped(task: ClaimedTask, message: str, reason: str) -> Outcome:
    return _outcome(
        task,
        TaskStatus.SKIPPED,
        attempt_status=AttemptStatus.SKIPPED,
        counts=False,
        skip_reason=reason,
        error={"type": "condition_false", "message": message},
    )


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _request_headers(task: ClaimedTask, headers: dict[str, Any]) -> dict[str, str]:
    """Rendered headers (a header that renders to null is left out) plus ours."""
    out = {str(k): _header_text(v) for k, v in headers.items() if v is not None}
    lower = {k.lower() for k in out}
    out["X-JobQueue-Job"] = task.job_id
    out["X-JobQueue-Task"] = task.name
    out["X-JobQueue-Attempt"] = str(task.attempt)
    if "idempotency-key" not in lower:
        out["Idempotency-Key"] = f"{task.job_id}:{task.name}"
    return out


async def _render(
    task: ClaimedTask,
    load: ContextLoader,
    env: SandboxEnvironment,
    callback: CallbackHandle | None = None,
) -> tuple[dict[str, Any], Outcome | None]:
    """The rendered request parts, or the outcome that ends the attempt before any call."""
    spec = task.spec
    parts = {"url": spec.url, "headers": spec.headers, "params": spec.params, "body": spec.body}
    if not task.templated and not spec.when:
        return parts, None
    context = build_context(**(await load(task)))
    if spec.parent_id is not None:  # an instance of a for_each task
        context |= {"item": spec.item, "item_index": spec.item_index}
    if callback is not None:
        context["callback"] = {"url": callback.url, "token": callback.token}
    base = f"/tasks/{spec.position}"
    try:
        if spec.when and not evaluate_condition(spec.when, context, env=env):
            return parts, skipped(task, f"when: {spec.when} is false", SKIP_WHEN)
        rendered = {
            k: render_value(v, context, pointer=f"{base}/{k}", env=env) for k, v in parts.items()
        }
    except TemplateError as exc:
        return parts, failed(task, {"type": "template", "message": str(exc)})
    if not isinstance(rendered["url"], str):
        return rendered, failed(task, {"type": "template", "message": "url must render to text"})
    return rendered, None


def _input_problem(task: ClaimedTask, body: Any) -> Outcome | None:
    schema = task.spec.input_schema
    if schema is None:
        return None
    errors = validate_instance(schema, body)
    if not errors:
        return None
    return failed(
        task,
        {
            "type": "input_invalid",
            "message": "the rendered body does not match the task's input schema; not sent",
            "errors": errors,
        },
    )


def _policy(task: ClaimedTask) -> RetryPolicy:
    spec = task.spec
    return policy_from_fields(
        max_attempts=task.max_attempts,
        strategy=spec.backoff_strategy,
        backoff_seconds=spec.backoff_seconds,
        max_backoff_seconds=spec.max_backoff_seconds,
        retry_on_status=spec.retry_on_status,
    )


def _retry_or_fail(
    task: ClaimedTask,
    error: dict[str, Any],
    *,
    retryable: bool,
    retry_after: float | None,
    policy: RetryPolicy | None = None,
    **f: Any,
) -> Outcome:
    policy = policy or _policy(task)
    tries = task.tries + 1
    if not retryable or tries >= policy.max_attempts:
        return failed(task, error, **f)
    due = time.time() + policy.delay(tries, retry_after=retry_after)
    if task.expires_at is not None and due >= task.expires_at:
        return failed(task, expired_error() | {"last_error": error}, **f)
    return _outcome(task, TaskStatus.QUEUED, error=error, next_attempt_at=due, **f)


def task_secrets(task: ClaimedTask, settings: AttemptSettings) -> frozenset[str]:
    """The lower-case header names secret for this task: configured plus task-marked."""
    marked = task.spec.secret_headers
    return settings.secret_headers | frozenset(marked) if marked else settings.secret_headers


def _response_fields(resp: HttpResponse, secret: frozenset[str]) -> dict[str, Any]:
    headers = mask_headers(resp.headers, secret=secret)
    return {
        "response_status": resp.status_code,
        "response_headers": headers,
        "response_body": resp.body,
        "response_truncated": resp.truncated,
        "duration_ms": resp.duration_ms,
    }


def _judge(task: ClaimedTask, resp: HttpResponse, settings: AttemptSettings) -> Outcome:
    fields = _response_fields(resp, task_secrets(task, settings))
    if 200 <= resp.status_code < 300 and task.spec.callback_timeout_sec is not None:
        # The answer only acknowledges the work: the callback brings the output.
        return _outcome(task, TaskStatus.WAITING, attempt_status=AttemptStatus.WAITING, **fields)
    if 200 <= resp.status_code < 300:
        schema = task.spec.output_schema
        errors = validate_instance(schema, resp.body) if schema is not None else []
        if resp.truncated and schema is not None:
            errors = [{"pointer": "", "message": "response truncated; cannot validate"}, *errors]
        if errors:
            error = {
                "type": "output_invalid",
                "message": "the response body does not match the task's output schema",
                "errors": errors,
            }
            return failed(task, error, **fields)
        return _outcome(task, TaskStatus.SUCCEEDED, **fields)
    policy = _policy(task)
    retry_after = None
    if resp.status_code in (429, 503):
        retry_after = retry_after_seconds(resp.headers)
    status_error: dict[str, Any] = {
        "type": "http_status",
        "message": f"the target answered {resp.status_code}",
        "status_code": resp.status_code,
    }
    return _retry_or_fail(
        task,
        status_error,
        retryable=policy.retries_status(resp.status_code),
        retry_after=retry_after,
        policy=policy,
        **fields,
    )


async def run_attempt(
    task: ClaimedTask,
    executor: Executor,
    load: ContextLoader,
    settings: AttemptSettings,
    callback: CallbackHandle | None = None,
) -> Outcome:
    """``callback``: a callback task's token for this attempt (already stored)."""
    now = time.time()
    if task.secret_error is not None:
        return failed(task, {"type": "secret_key", "message": task.secret_error})
    if task.expires_at is not None and now >= task.expires_at:
        return failed(task, expired_error())
    rendered, early = await _render(task, load, settings.templates, callback)
    if early is not None:
        return early
    problem = _input_problem(task, rendered["body"])
    if problem is not None:
        return problem
    spec = task.spec
    timeout = float(spec.timeout_sec or settings.default_timeout)
    ttl_bound = task.expires_at is not None and task.expires_at - now < timeout
    if ttl_bound and task.expires_at is not None:
        timeout = max(task.expires_at - now, 0.001)
    request = HttpRequest(
        method=spec.method,
        url=rendered["url"],
        headers=_request_headers(task, rendered["headers"] or {}),
        params=rendered["params"] or {},
        body=rendered["body"],
        timeout=timeout,
        follow_redirects=spec.follow_redirects,
        secret_headers=task_secrets(task, settings),
    )
    hosts = settings.hosts
    host = _host_of(request.url) if hosts is not None and not hosts.idle else None
    if hosts is not None and host is not None:
        until = hosts.acquire(host)
        if until is not None:
            return _deferred(task, host, until, paused=hosts.paused_until(host) is not None)
    started = time.perf_counter()
    try:
        response = await executor.send(request)
    except HttpError as exc:
        if exc.kind == "timeout" and ttl_bound:
            return failed(task, expired_error(), attempt_status=AttemptStatus.EXPIRED)
        error = {"type": exc.kind, "message": str(exc)}
        return _retry_or_fail(task, error, retryable=exc.retryable, retry_after=None)
    finally:
        if hosts is not None and host is not None:
            hosts.release(host, time.perf_counter() - started)
    if hosts is not None and response.status_code in (429, 503):
        delay = retry_after_seconds(response.headers)
        paused = _host_of(request.url)
        if delay and paused:
            hosts.pause(paused, time.time() + delay)
    return _judge(task, response, settings)


def _host_of(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None  # the executor says what is wrong with the URL


def _deferred(task: ClaimedTask, host: str, until: float, *, paused: bool) -> Outcome:
    """Nothing sent: the host is paused or at its cap; back to the queue until ``until``."""
    when = datetime.fromtimestamp(until, UTC).isoformat(timespec="milliseconds")
    why = "paused after a Retry-After" if paused else "at its JOBQUEUE_HOST_LIMITS cap"
    return _outcome(
        task,
        TaskStatus.QUEUED,
        attempt_status=AttemptStatus.INTERRUPTED,
        counts=False,
        deferred=True,
        next_attempt_at=until,
        error={"type": "host_busy", "message": f"host {host} is {why}; waits until {when}"},
    )
