"""JOBQUEUE_* environment variables reach the engine's configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.settings import Settings


def test_every_engine_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "JOBQUEUE_DB_URL": "sqlite+aiosqlite:///./x.db",
        "JOBQUEUE_CONCURRENCY": "32",
        "JOBQUEUE_POLL_INTERVAL": "0.05",
        "JOBQUEUE_DEFAULT_TIMEOUT": "7.5",
        "JOBQUEUE_RESULT_MAX_BYTES": "1000",
        "JOBQUEUE_EMBEDDED_WORKER": "false",
        "JOBQUEUE_LEASE_SECONDS": "12",
        "JOBQUEUE_REAPER_INTERVAL": "3",
        "JOBQUEUE_MAX_RESCUES": "5",
        "JOBQUEUE_SHUTDOWN_GRACE": "4",
        "JOBQUEUE_SQLITE_SYNCHRONOUS": "normal",
        "JOBQUEUE_ALLOWED_HOSTS": "api.example.org, 10.0.0.0/8",
        "JOBQUEUE_ALLOW_PRIVATE_NETWORKS": "true",
        "JOBQUEUE_HTTP_CLIENT": "httpx",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    config = settings.engine_config()
    assert settings.embedded_worker is False
    assert config.db_url == "sqlite+aiosqlite:///./x.db"
    assert (config.concurrency, config.poll_interval, config.default_timeout) == (32, 0.05, 7.5)
    assert (config.result_max_bytes, config.lease_seconds, config.reaper_interval) == (1000, 12, 3)
    assert (config.max_rescues, config.shutdown_grace) == (5, 4)
    assert config.sqlite_synchronous == "NORMAL"
    assert config.allowed_hosts == ("api.example.org", "10.0.0.0/8")
    assert config.allow_private_networks is True
    assert config.http_client == "httpx"


def test_defaults_match_the_spec() -> None:
    config = Settings().engine_config()
    assert config.db_url == "sqlite+aiosqlite:///./data/jobqueue.db"
    assert (config.concurrency, config.poll_interval, config.default_timeout) == (4, 0.3, 30)
    assert (config.result_max_bytes, config.lease_seconds, config.reaper_interval) == (
        1_048_576,
        30,
        30,
    )
    assert (config.max_rescues, config.shutdown_grace, config.sqlite_synchronous) == (3, 20, "FULL")
    assert config.allowed_hosts == () and config.allow_private_networks is False
    assert Settings().embedded_worker is True


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_SQLITE_SYNCHRONOUS", "SOMETIMES")
    with pytest.raises(ValidationError):
        Settings()


def test_body_read_timeout_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().body_read_timeout == 30.0
    monkeypatch.setenv("JOBQUEUE_BODY_READ_TIMEOUT", "2.5")
    assert Settings().body_read_timeout == 2.5
    monkeypatch.setenv("JOBQUEUE_BODY_READ_TIMEOUT", "0")
    with pytest.raises(ValidationError):
        Settings()


def test_secret_and_host_limit_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.fernet import Fernet

    keys = [Fernet.generate_key().decode() for _ in range(2)]
    monkeypatch.setenv("JOBQUEUE_SECRET_HEADERS", "X-Signature, x-token")
    monkeypatch.setenv("JOBQUEUE_SECRET_KEY", ",".join(keys))
    monkeypatch.setenv("JOBQUEUE_HOST_LIMITS", "api.example.com=4:10/s")
    config = Settings().engine_config()
    assert config.secret_header_names == frozenset({"x-signature", "x-token"})
    assert config.secret_keys == tuple(keys)
    assert config.host_limits == "api.example.com=4:10/s"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("JOBQUEUE_SECRET_KEY", "not-a-key", "key 1 of 1 is not a Fernet key"),
        ("JOBQUEUE_HOST_LIMITS", "a.org=0", "concurrency that is not a whole number"),
    ],
)
def test_bad_secret_and_host_limit_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings()
