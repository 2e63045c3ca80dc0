"""Keys, ownership and the audit log at the engine, on a real SQLite file (and, re-run by
tests/pg/test_access_on_postgres.py, on PostgreSQL): the owner filter is in the query, the audit
row commits with its change, keys are stored hashed."""

from __future__ import annotations

import hashlib
import time

import pytest
from sqlalchemy import select

from engine import Actor, AuditFilter, Conflict, Engine, JobFilter, NotFound
from engine.store.tables import api_keys
from schemas.jobs import parse_job_document
from tests.support.store import store_of

LATER = "2999-01-01T00:00:00Z"
ALICE = Actor(name="alice", address="10.0.0.1")
BOB = Actor(name="bob", address="10.0.0.2")


async def _submit(engine: Engine, owner: str, by: Actor, tag: str = "t") -> str:
    doc = {"url": "http://127.0.0.1:9/", "scheduled_at": LATER, "tags": [tag]}
    result = await engine.submit(parse_job_document(doc), single_call=True, owner=owner, by=by)
    return result.job_id


async def test_the_list_and_every_read_are_filtered_by_owner(engine: Engine) -> None:
    mine = [await _submit(engine, "alice", ALICE, "own") for _ in range(3)]
    theirs = await _submit(engine, "bob", BOB, "own")

    page = await engine.list_jobs(JobFilter(tag="own", owner="alice"), limit=2)
    rest = await engine.list_jobs(
        JobFilter(tag="own", owner="alice"), limit=2, cursor=page["next_cursor"]
    )
    listed = [j["job_id"] for j in page["items"] + rest["items"]]
    assert sorted(listed) == sorted(mine) and rest["next_cursor"] is None
    everyone = await engine.list_jobs(JobFilter(tag="own"), limit=10)
    assert {j["job_id"] for j in everyone["items"]} == {*mine, theirs}

    for read in (engine.get_job, engine.get_result, engine.get_graph):
        with pytest.raises(NotFound):
            await read(theirs, owner="alice")
    with pytest.raises(NotFound):
        await engine.get_attempts(theirs, "main", owner="alice")
    with pytest.raises(NotFound):
        await engine.cancel(theirs, owner="alice", by=ALICE)
    assert (await engine.get_job(theirs, owner="bob"))["job_id"] == theirs


async def test_each_change_has_its_audit_row_and_a_refused_one_none(engine: Engine) -> None:
    job_id = await _submit(engine, "alice", ALICE)
    with pytest.raises(NotFound):
        await engine.cancel(job_id, owner="bob", by=BOB)
    assert await engine.cancel(job_id, owner="alice", by=ALICE) == "canceled"
    with pytest.raises(Conflict):
        await engine.cancel(job_id, owner="alice", by=ALICE)
    await engine.delete(job_id, by=BOB)

    page = await engine.audit_log(AuditFilter(target=job_id))
    rows = [(e["actor"], e["action"], e["address"]) for e in reversed(page["items"])]
    assert rows == [
        ("alice", "job.create", "10.0.0.1"),
        ("alice", "job.cancel", "10.0.0.1"),
        ("bob", "job.delete", "10.0.0.2"),
    ]
    only_bob = await engine.audit_log(AuditFilter(actor="bob", target=job_id))
    assert [e["action"] for e in only_bob["items"]] == ["job.delete"]
    future = await engine.audit_log(AuditFilter(target=job_id, after=time.time() + 60))
    assert future["items"] == []


async def test_keys_are_stored_hashed_and_revoked_keys_stop(engine: Engine) -> None:
    assert not await engine.auth_enabled()
    key, info = await engine.create_key("ci", by=ALICE)
    assert info["name"] == "ci" and not info["admin"] and key.startswith("jq_")
    async with store_of(engine).read() as conn:
        stored = (await conn.execute(select(api_keys))).one()
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in repr(tuple(stored))
    assert await engine.auth_enabled()
    principal = await engine.authenticate(key)
    assert principal is not None and (principal.name, principal.admin) == ("ci", False)
    assert await engine.authenticate(key + "x") is None
    with pytest.raises(Conflict):
        await engine.create_key("ci")

    await engine.revoke_key("ci", by=ALICE)
    assert await engine.authenticate(key) is None
    with pytest.raises(NotFound):
        await engine.revoke_key("ci")
    again, _ = await engine.create_key("ci", admin=True)
    assert (await engine.authenticate(again)) is not None
    listed = await engine.list_keys(include_revoked=True)
    assert [(k["name"], k["revoked_at"] is None) for k in listed] == [("ci", False), ("ci", True)]
    actions = await engine.audit_log(AuditFilter(target="ci"))
    assert [e["action"] for e in reversed(actions["items"])] == ["key.create", "key.revoke"]
