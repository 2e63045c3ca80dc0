"""Idempotency-Key under a race: two API processes on one PostgreSQL database, 50 requests at
once per round, half with one body and half with another, all with the same key."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.integration.target_server import TargetServer
from tests.support.processes import Server

ROUNDS = 20
PER_ROUND = 50


async def _round(
    client: httpx.AsyncClient, servers: list[str], key: str, bodies: list[dict[str, str]]
) -> list[httpx.Response]:
    async def post(i: int) -> httpx.Response:
        return await client.post(
            f"{servers[i % 2]}/api/v1/jobs",
            json=bodies[(i // 2) % 2],
            headers={"Idempotency-Key": key},
        )

    return list(await asyncio.gather(*(post(i) for i in range(PER_ROUND))))


def _check(responses: list[httpx.Response], bodies: list[dict[str, str]]) -> None:
    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {200, 201, 422}, codes
    assert codes[201] == 1, f"exactly one request creates the job: {codes}"
    created = next(r for r in responses if r.status_code == 201)
    winner = created.json()["job_id"]
    for i, response in enumerate(responses):
        same_body = (i // 2) % 2 == (responses.index(created) // 2) % 2
        if same_body:
            assert response.status_code in (200, 201), response.text
            assert response.json()["job_id"] == winner
            if response.status_code == 200:
                assert response.headers["idempotent-replayed"] == "true"
        else:
            assert response.status_code == 422, response.text
            assert response.json()["detail"]["code"] == "idempotency_key_reused"
    assert len(bodies) == 2


@pytest.mark.slow
async def test_racing_posts_on_two_api_processes_get_exact_answers(
    tmp_path: Path, target_server: TargetServer, db_url: str
) -> None:
    settings = {"JOBQUEUE_DB_URL": db_url, "JOBQUEUE_EMBEDDED_WORKER": "false"}
    with (
        Server(tmp_path, None, **settings) as first,  # type: ignore[arg-type]
        Server(tmp_path, None, **settings) as second,  # type: ignore[arg-type]
    ):
        servers = [first.url, second.url]
        bodies = [{"url": target_server.url("/json?a")}, {"url": target_server.url("/json?b")}]
        # No keep-alive: a pooled connection reused just as the server times it out would
        # fail with a ReadError that says nothing about idempotency.
        limits = httpx.Limits(max_connections=PER_ROUND, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            for n in range(ROUNDS):
                _check(await _round(client, servers, f"race-{n}", bodies), bodies)
            listed = (await client.get(f"{first.url}/api/v1/jobs?limit=100")).json()["items"]
        assert len(listed) == ROUNDS, "one job per key"
        for server in (first, second):
            assert "Traceback" not in server.output()
