"""Poll-with-timeout helpers: tests wait for a state, never for a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from engine import Engine

TERMINAL = ("succeeded", "failed", "canceled")


async def until(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, interval: float = 0.02
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s (last value {value!r})")
        await asyncio.sleep(interval)


async def job_ends(engine: Engine, job_id: str, timeout: float = 15.0) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        job = await engine.get_job(job_id)
        return job if job["status"] in TERMINAL else None

    return await until(check, timeout=timeout)


async def job_status_is(engine: Engine, job_id: str, status: str, timeout: float = 15.0) -> None:
    async def check() -> bool:
        return (await engine.get_job(job_id))["status"] == status

    await until(check, timeout=timeout)


async def api_job_ends(
    http: httpx.AsyncClient, job_id: str, timeout: float = 15.0
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        job = (await http.get(f"/api/v1/jobs/{job_id}")).json()
        return job if job["status"] in TERMINAL else None

    return await until(check, timeout=timeout)
