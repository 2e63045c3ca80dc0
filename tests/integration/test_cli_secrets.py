"""``jobqueue keys rotate-secret`` on a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from api.cli import app
from engine import Engine
from schemas.jobs import parse_job_document
from tests.support.config import make_config

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


async def submit_encrypted(db_url: str) -> None:
    engine = await Engine.open(make_config(db_url, secret_keys=(OLD,)))
    try:
        doc = {"url": "http://127.0.0.1:9/x", "headers": {"Authorization": "Bearer s"}}
        await engine.submit(parse_job_document(doc), single_call=True)
    finally:
        await engine.close()


def test_rotate_secret_re_encrypts_with_the_first_key(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(submit_encrypted(f"sqlite+aiosqlite:///{cli_env / 'cli.db'}"))

    monkeypatch.setenv("JOBQUEUE_SECRET_KEY", f"{NEW},{OLD}")
    result = CliRunner().invoke(app, ["keys", "rotate-secret"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 stored rows (task requests, job params)" in result.output

    monkeypatch.setenv("JOBQUEUE_SECRET_KEY", OLD)  # rows the listed keys cannot read
    result = CliRunner().invoke(app, ["keys", "rotate-secret"])
    assert result.exit_code == 1
    assert "task 1: encrypted with a key that is not in JOBQUEUE_SECRET_KEY" in result.output


def test_rotate_secret_without_a_key_says_how_to_make_one(cli_env: Path) -> None:
    result = CliRunner().invoke(app, ["keys", "rotate-secret"])
    assert result.exit_code == 2
    assert "JOBQUEUE_SECRET_KEY is not set" in result.output
    assert "Fernet.generate_key()" in result.output


def test_a_malformed_key_is_a_settings_error(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBQUEUE_SECRET_KEY", f"{OLD},not-a-key")
    result = CliRunner().invoke(app, ["keys", "rotate-secret"])
    assert result.exit_code == 2
    assert (
        "JOBQUEUE_SECRET_KEY: " in result.output
        and "key 2 of 2 is not a Fernet key" in result.output
    )
