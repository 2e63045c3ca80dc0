"""The user docs (README.md, docs/) say what the API really answers."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from engine import Engine

ROOT = Path(__file__).resolve().parents[2]
USER_DOCS = [
    "README.md",
    "examples/README.md",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
]


def doc(name: str) -> str:
    """The document's text with its line breaks and runs of spaces folded into single spaces."""
    return " ".join((ROOT / name).read_text().split())


def test_user_docs_cite_no_spec_and_no_issue_numbers() -> None:
    for name in USER_DOCS:
        text = doc(name)
        assert not re.search(r"\bSPEC\b", text), name
        assert not re.search(r"\bissues? #?\d+", text, re.IGNORECASE), name


async def test_healthz_is_documented_as_it_answers(
    client: httpx.AsyncClient, running: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    healthy = await client.get("/healthz")
    assert healthy.status_code == 200
    assert healthy.json() == {"status": "ok", "database": "ok", "workers": 1, "failed_workers": []}
    for name in ("docs/api.md", "docs/operations.md"):
        assert json.dumps(healthy.json()) in doc(name), name

    async def unreachable() -> None:
        raise ConnectionRefusedError("database is down")

    monkeypatch.setattr(running, "ping", unreachable)
    sick = await client.get("/healthz")
    assert sick.status_code == 503
    assert sick.json() == {
        "status": "unhealthy",
        "database": "ConnectionRefusedError('database is down')",
        "workers": 1,
        "failed_workers": [],
    }
    for name in ("docs/api.md", "docs/operations.md"):
        text = doc(name)
        assert "503" in text and '"status": "unhealthy"' in text, name
        assert "does not query the database" not in text, name


async def test_idempotency_key_errors_are_documented_with_their_real_codes(
    client: httpx.AsyncClient,
) -> None:
    key = {"Idempotency-Key": "order-1"}
    assert (
        await client.post("/api/v1/jobs", json={"url": "https://a.example/"}, headers=key)
    ).status_code == 201
    reused = await client.post("/api/v1/jobs", json={"url": "https://b.example/"}, headers=key)
    assert reused.status_code == 422
    code = reused.json()["detail"]["code"]
    for name in ("docs/api.md", "docs/workflows.md"):
        assert re.search(f'[`"]{code}[`"]', doc(name)), name

    too_long = {"Idempotency-Key": "k" * 257}
    bad = await client.post("/api/v1/jobs", json={"url": "https://a.example/"}, headers=too_long)
    assert bad.status_code == 422
    detail = bad.json()["detail"]
    assert detail["code"] == "invalid_job"
    assert [e["code"] for e in detail["errors"]] == ["invalid_header"]
    assert "`Idempotency-Key` is reported the same way, as an `invalid_header` entry" in doc(
        "docs/api.md"
    )


async def test_a_literal_url_scheme_is_checked_at_creation_as_documented(
    client: httpx.AsyncClient,
) -> None:
    refused = await client.post("/api/v1/jobs", json={"url": "ftp://x"})
    assert refused.status_code == 422
    (error,) = refused.json()["detail"]["errors"]
    assert (error["code"], error["location"]) == ("invalid_field", "/url")
    templated = {"params": {"u": "ftp://x"}, "tasks": [{"name": "a", "url": "{{ params.u }}"}]}
    assert (await client.post("/api/v1/jobs", json=templated)).status_code == 201
    text = doc("docs/workflows.md")
    assert '`{"url": "ftp://x"}` is refused at creation (`422`, `invalid_field` at `/url`)' in text


@pytest.fixture
def new_york_local_time() -> Iterator[None]:
    """The process's local time zone is five hours off UTC (four in summer)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


async def test_list_times_without_a_zone_are_utc_as_documented(
    client: httpx.AsyncClient, new_york_local_time: None
) -> None:
    job_id = (await client.post("/api/v1/jobs", json={"url": "https://a.example/"})).json()[
        "job_id"
    ]
    created = datetime.fromisoformat(
        (await client.get(f"/api/v1/jobs/{job_id}")).json()["created_at"]
    )
    after = (created - timedelta(seconds=1)).replace(tzinfo=None).isoformat()
    before = (created + timedelta(seconds=1)).replace(tzinfo=None).isoformat()
    listed = await client.get(
        "/api/v1/jobs", params={"created_after": after, "created_before": before}
    )
    assert [j["job_id"] for j in listed.json()["items"]] == [job_id]
    assert "A value without a zone is read as UTC." in doc("docs/api.md")
