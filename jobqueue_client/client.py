"""``JobQueue`` (blocking) and ``AsyncJobQueue`` (asyncio): the same methods, thin over httpx.

Each method builds a call with :mod:`._calls`, sends it, and decodes the answer there; the two
classes differ only in how they send and sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import httpx

from . import _calls
from ._calls import Call, JobDocument, JobFilters
from .errors import TransportError
from .models import (
    Attempt,
    CallbackResult,
    Job,
    JobDetail,
    JobPage,
    JobResult,
    JobSummary,
    Validation,
    WebhookDelivery,
)

T = TypeVar("T")

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class JobQueue:
    """A blocking client of a JobQueue server.

    ``base_url`` is the server's address (``/api/v1`` is added); ``api_key``, when given, is sent
    as ``Authorization: Bearer <key>``; ``timeout`` is per HTTP request, in seconds; ``transport``
    replaces httpx's (e.g. ``httpx.MockTransport`` in tests). Use it as a context manager, or
    call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=_calls.api_url(base_url),
            headers=_calls.default_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    def _send(self, call: Call[T]) -> T:
        try:
            response = self._http.request(
                call.method,
                call.path,
                params=call.params,
                headers=call.headers,
                content=call.content,
            )
        except httpx.RequestError as exc:
            raise TransportError(f"{self.base_url}: {exc}") from exc
        return _calls.finish(call, response)

    def submit(self, job: JobDocument, *, idempotency_key: str | None = None) -> Job:
        """Create a job from a mapping (sent as JSON) or YAML text. Raises InvalidJob."""
        return self._send(_calls.submit(job, idempotency_key))

    def validate(self, job: JobDocument) -> Validation:
        """Run every creation-time check and create nothing. Raises InvalidJob."""
        return self._send(_calls.validate(job))

    def get(self, job_id: str) -> JobDetail:
        """The job and its tasks."""
        return self._send(_calls.get(job_id))

    def result(self, job_id: str) -> JobResult:
        """The responses stored so far (the job need not have ended)."""
        return self._send(_calls.result(job_id))

    def attempts(self, job_id: str, task: str) -> tuple[Attempt, ...]:
        """Every attempt of one task, oldest first."""
        return self._send(_calls.attempts(job_id, task))

    def wait(
        self, job_id: str, *, timeout: float | None = None, poll_interval: float = 0.2
    ) -> JobResult:
        """Poll until the job has ended and return its result; raises WaitTimeout."""
        deadline = _calls.Deadline(job_id, timeout, poll_interval)
        while True:
            result = self.result(job_id)
            if result.ended:
                return result
            time.sleep(deadline.next_delay(result))

    def cancel(self, job_id: str) -> Job:
        """Cancel a job that has not ended; raises Conflict if it has."""
        return self._send(_calls.cancel(job_id))

    def retry(self, job_id: str) -> Job:
        """Re-run the failed, skipped and canceled tasks of a failed or canceled job."""
        return self._send(_calls.retry(job_id))

    def delete(self, job_id: str) -> None:
        """Delete a job (``DELETE /jobs/{id}``)."""
        self._send(_calls.delete(job_id))

    def complete_callback(
        self, token: str, *, output: Any = None, error: Mapping[str, Any] | None = None
    ) -> CallbackResult:
        """Finish the task waiting for ``token``: with ``output``, or failed with ``error``.
        Raises NotFound (unknown token) or Conflict (used, timed out, job canceled)."""
        return self._send(_calls.complete_callback(token, output=output, error=error))

    def webhooks(self, job_id: str) -> tuple[WebhookDelivery, ...]:
        """The job's completion webhook deliveries, each with its tries."""
        return self._send(_calls.webhooks(job_id))

    def list(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        **filters: Unpack[JobFilters],
    ) -> JobPage:
        """One page of jobs, newest first.

        Filters: ``status``, ``tag``, ``name``, ``created_after``, ``created_before`` (aware
        datetimes or ISO 8601 text); ``cursor`` is the previous page's ``next_cursor``.
        """
        return self._send(_calls.list_jobs(limit=limit, cursor=cursor, **filters))

    def iter_jobs(
        self, *, page_size: int = 100, **filters: Unpack[JobFilters]
    ) -> Iterator[JobSummary]:
        """Every job that matches, newest first, fetching pages of ``page_size`` as needed."""
        cursor: str | None = None
        while True:
            page = self.list(limit=page_size, cursor=cursor, **filters)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def put_workflow(self, name: str, document: JobDocument) -> tuple[dict[str, Any], bool]:
        """Save a workflow definition: (the stored version, true when it is a new version)."""
        return self._send(_calls.put_workflow(name, document))

    def list_workflows(self) -> tuple[dict[str, Any], ...]:
        return self._send(_calls.list_workflows())

    def get_workflow(self, name: str, version: int | None = None) -> dict[str, Any]:
        return self._send(_calls.get_workflow(name, version))

    def delete_workflow(self, name: str) -> None:
        self._send(_calls.delete_workflow(name))

    def start_workflow(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Start a job of a definition; ``job.raw["workflow"]`` names the version it runs."""
        return self._send(_calls.start_workflow(name, params, version, idempotency_key))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncJobQueue:
    """The asyncio client: the methods of :class:`JobQueue`, awaitable; ``iter_jobs`` is an
    async iterator. Use it with ``async with``, or await :meth:`close`."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._http = httpx.AsyncClient(
            base_url=_calls.api_url(base_url),
            headers=_calls.default_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    async def _send(self, call: Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method,
                call.path,
                params=call.params,
                headers=call.headers,
                content=call.content,
            )
        except httpx.RequestError as exc:
            raise TransportError(f"{self.base_url}: {exc}") from exc
        return _calls.finish(call, response)

    async def submit(self, job: JobDocument, *, idempotency_key: str | None = None) -> Job:
        """Create a job from a mapping (sent as JSON) or YAML text. Raises InvalidJob."""
        return await self._send(_calls.submit(job, idempotency_key))

    async def validate(self, job: JobDocument) -> Validation:
        """Run every creation-time check and create nothing. Raises InvalidJob."""
        return await self._send(_calls.validate(job))

    async def get(self, job_id: str) -> JobDetail:
        """The job and its tasks."""
        return await self._send(_calls.get(job_id))

    async def result(self, job_id: str) -> JobResult:
        """The responses stored so far (the job need not have ended)."""
        return await self._send(_calls.result(job_id))

    async def attempts(self, job_id: str, task: str) -> tuple[Attempt, ...]:
        """Every attempt of one task, oldest first."""
        return await self._send(_calls.attempts(job_id, task))

    async def wait(
        self, job_id: str, *, timeout: float | None = None, poll_interval: float = 0.2
    ) -> JobResult:
        """Poll until the job has ended and return its result; raises WaitTimeout."""
        deadline = _calls.Deadline(job_id, timeout, poll_interval)
        while True:
            result = await self.result(job_id)
            if result.ended:
                return result
            await asyncio.sleep(deadline.next_delay(result))

    async def cancel(self, job_id: str) -> Job:
        """Cancel a job that has not ended; raises Conflict if it has."""
        return await self._send(_calls.cancel(job_id))

    async def retry(self, job_id: str) -> Job:
        """Re-run the failed, skipped and canceled tasks of a failed or canceled job."""
        return await self._send(_calls.retry(job_id))

    async def delete(self, job_id: str) -> None:
        """Delete a job (``DELETE /jobs/{id}``)."""
        await self._send(_calls.delete(job_id))

    async def complete_callback(
        self, token: str, *, output: Any = None, error: Mapping[str, Any] | None = None
    ) -> CallbackResult:
        """Finish the task waiting for ``token``: with ``output``, or failed with ``error``."""
        return await self._send(_calls.complete_callback(token, output=output, error=error))

    async def webhooks(self, job_id: str) -> tuple[WebhookDelivery, ...]:
        """The job's completion webhook deliveries, each with its tries."""
        return await self._send(_calls.webhooks(job_id))

    async def list(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        **filters: Unpack[JobFilters],
    ) -> JobPage:
        """One page of jobs, newest first.

        Filters: ``status``, ``tag``, ``name``, ``created_after``, ``created_before`` (aware
        datetimes or ISO 8601 text); ``cursor`` is the previous page's ``next_cursor``.
        """
        return await self._send(_calls.list_jobs(limit=limit, cursor=cursor, **filters))

    async def iter_jobs(
        self, *, page_size: int = 100, **filters: Unpack[JobFilters]
    ) -> AsyncIterator[JobSummary]:
        """Every job that matches, newest first, fetching pages of ``page_size`` as needed."""
        cursor: str | None = None
        while True:
            page = await self.list(limit=page_size, cursor=cursor, **filters)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def put_workflow(self, name: str, document: JobDocument) -> tuple[dict[str, Any], bool]:
        """Save a workflow definition: (the stored version, true when it is a new version)."""
        return await self._send(_calls.put_workflow(name, document))

    async def list_workflows(self) -> tuple[dict[str, Any], ...]:
        return await self._send(_calls.list_workflows())

    async def get_workflow(self, name: str, version: int | None = None) -> dict[str, Any]:
        return await self._send(_calls.get_workflow(name, version))

    async def delete_workflow(self, name: str) -> None:
        await self._send(_calls.delete_workflow(name))

    async def start_workflow(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Start a job of a definition; ``job.raw["workflow"]`` names the version it runs."""
        return await self._send(_calls.start_workflow(name, params, version, idempotency_key))

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
