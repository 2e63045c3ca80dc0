"""Encryption at rest (``JOBQUEUE_SECRET_KEY``): no plaintext secret in the database's raw
storage, the worker still sends the real values, rotation, and a wrong key failing the task
with a clear error instead of stopping the worker. ``tests/pg`` runs the same tests on
PostgreSQL (``db_url`` is overridden there)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from engine import Engine, EngineConfig
from schemas.jobs import parse_job_document
from tests.integration.target_server import TargetServer
from tests.support.config import make_config
from tests.support.waiting import job_ends

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
SECRETS = [
    "Bearer header-secret-a1",
    "query-secret-b2",
    "body-secret-c3",
    "param-secret-d4",
    "url-secret-e5",
]


def secret_job(server: TargetServer) -> dict[str, Any]:
    return {
        "name": "at-rest",
        "params": {"token": "param-secret-d4"},
        "tasks": [
            {
                "name": "call",
                "method": "POST",
                "url": server.url("/echo"),
                "headers": {"Authorization": "Bearer header-secret-a1"},
                "params": {"api_key": "query-secret-b2"},
                "body": {"password": "body-secret-c3", "token": "{{ params.token }}"},
            }
        ],
    }


async def raw_storage(db_url: str) -> bytes:
    """Every byte the database holds for our tables, as stored: the SQLite file and its WAL, or
    PostgreSQL's rows read as text by a plain asyncpg connection."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        wal = path.with_name(path.name + "-wal")
        return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        rows = []
        for table in ("jobs", "tasks", "attempts"):
            rows += await conn.fetch(f"SELECT t::text AS row FROM {table} t")
    finally:
        await conn.close()
    return "\n".join(r["row"] for r in rows).encode()


async def test_request_parts_are_stored_only_encrypted(
    db_url: str, target_server: TargetServer
) -> None:
    doc = secret_job(target_server)
    doc["tasks"][0]["url"] = target_server.url("/json").replace("://", "://u:url-secret-e5@")
    config = make_config(db_url, secret_keys=(OLD_KEY,))
    engine = await Engine.open(config)
    try:
        engine.start_worker()
        job_id = (await engine.submit(parse_job_document(doc))).job_id
        assert (await job_ends(engine, job_id))["status"] == "succeeded"
        await engine.stop_workers()
        shown = (await engine.get_job(job_id))["tasks"][0]["url"]
        assert shown == target_server.url("/json").replace("://", "://***@")
    finally:
        await engine.close()
    stored = await raw_storage(db_url)
    assert b"at-rest" in stored
    assert [s for s in SECRETS if s.encode() in stored] == []
    sent = target_server.requests[0]
    assert sent.header("authorization") == "Bearer header-secret-a1"
    assert b"body-secret-c3" in sent.body and b"param-secret-d4" in sent.body


async def test_without_a_key_specs_are_stored_as_before(
    db_url: str, target_server: TargetServer
) -> None:
    engine = await Engine.open(make_config(db_url))
    try:
        await engine.submit(parse_job_document(secret_job(target_server)))
    finally:
        await engine.close()
    stored = await raw_storage(db_url)
    assert b"body-secret-c3" in stored and b"param-secret-d4" in stored


async def submit_only(config: EngineConfig, server: TargetServer) -> str:
    engine = await Engine.open(config)
    try:
        doc = secret_job(server)
        doc["tasks"][0]["url"] = server.url("/json")
        return (await engine.submit(parse_job_document(doc))).job_id
    finally:
        await engine.close()


async def run_until_done(config: EngineConfig, job_id: str) -> dict[str, Any]:
    engine = await Engine.open(config)
    try:
        await asyncio.wait_for(engine.worker().run(burst=True), 30)
        return await engine.get_result(job_id)
    finally:
        await engine.close()


async def test_rotation_then_the_new_key_alone_works(
    db_url: str, target_server: TargetServer
) -> None:
    old_only = make_config(db_url, secret_keys=(OLD_KEY,))
    job_id = await submit_only(old_only, target_server)

    both = make_config(db_url, secret_keys=(NEW_KEY, OLD_KEY))
    engine = await Engine.open(both)
    try:
        assert await engine.rotate_secret() == 2  # the task spec and the job's params
        assert await engine.rotate_secret() == 2  # each run re-encrypts (new tokens)
    finally:
        await engine.close()

    # the old key alone no longer decrypts: the task fails with a clear error, the worker lives
    result = await run_until_done(old_only, job_id)
    assert result["status"] == "failed"
    error = result["tasks"]["call"]["error"]
    assert error["type"] == "secret_key"
    assert "not in JOBQUEUE_SECRET_KEY" in error["message"]
    assert target_server.requests == []

    # the new key alone does
    second = await submit_only(both, target_server)
    engine = await Engine.open(both)
    try:
        await engine.rotate_secret()
    finally:
        await engine.close()
    new_only = make_config(db_url, secret_keys=(NEW_KEY,))
    assert (await run_until_done(new_only, second))["status"] == "succeeded"
    assert target_server.requests[0].header("authorization") == "Bearer header-secret-a1"


async def test_rotation_encrypts_rows_stored_in_plaintext(
    db_url: str, target_server: TargetServer
) -> None:
    job_id = await submit_only(make_config(db_url), target_server)
    assert b"body-secret-c3" in await raw_storage(db_url)
    keyed = make_config(db_url, secret_keys=(NEW_KEY,))
    engine = await Engine.open(keyed)
    try:
        assert await engine.rotate_secret() == 2
    finally:
        await engine.close()
    assert (await run_until_done(keyed, job_id))["status"] == "succeeded"
    assert target_server.requests[0].header("authorization") == "Bearer header-secret-a1"


async def test_a_missing_key_fails_the_task_clearly(
    db_url: str, target_server: TargetServer
) -> None:
    job_id = await submit_only(make_config(db_url, secret_keys=(OLD_KEY,)), target_server)
    result = await run_until_done(make_config(db_url), job_id)
    error = result["tasks"]["call"]["error"]
    assert (result["status"], error["type"]) == ("failed", "secret_key")
    assert "JOBQUEUE_SECRET_KEY is not set" in error["message"]
