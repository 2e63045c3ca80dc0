"""The broker settings: which backend a URL picks, the extra a missing client needs, the URL as
``/healthz`` shows it, and local signals when no broker is set."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from api.cli import app
from api.settings import Settings
from engine.signals import (
    CANCEL,
    READY,
    BrokerConfigError,
    LocalSignals,
    Signal,
    check_broker_url,
    mask_url,
    open_signals,
)
from engine.signals import urls as broker_urls


def test_broker_settings_reach_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_BROKER_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("JOBQUEUE_BROKER_PREFIX", "jobqueue-staging")
    config = Settings().engine_config()
    assert (config.broker_url, config.broker_prefix) == (
        "redis://127.0.0.1:6379/3",
        "jobqueue-staging",
    )


def test_no_broker_by_default() -> None:
    config = Settings().engine_config()
    assert config.broker_url is None and config.broker_prefix == "jobqueue"
    assert isinstance(open_signals(None), LocalSignals)


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("redis://127.0.0.1:6379/0", "redis"),
        ("rediss://cache.example.org:6380/1", "redis"),
        ("amqp://guest:guest@127.0.0.1:5672/", "rabbitmq"),
        ("amqps://u:p@mq.example.org/prod", "rabbitmq"),
    ],
)
def test_the_scheme_picks_the_backend(url: str, backend: str) -> None:
    assert broker_urls.backend_of(url) == backend


def test_an_unknown_scheme_is_refused_with_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_BROKER_URL", "kafka://127.0.0.1:9092")
    with pytest.raises(ValidationError) as err:
        Settings()
    assert "unknown broker URL scheme 'kafka://'" in str(err.value)
    assert "redis://" in str(err.value) and "amqp://" in str(err.value)


@pytest.mark.parametrize(
    ("url", "extra"),
    [("redis://127.0.0.1:6379/0", "redis"), ("amqp://guest:guest@127.0.0.1/", "rabbitmq")],
)
def test_a_missing_client_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, url: str, extra: str
) -> None:
    monkeypatch.setattr(broker_urls, "_installed", lambda module: False)
    with pytest.raises(BrokerConfigError, match=rf"pip install 'jobqueue\[{extra}\]'"):
        check_broker_url(url)
    with pytest.raises(BrokerConfigError, match=rf"jobqueue\[{extra}\]"):
        open_signals(url)


def test_the_worker_command_says_which_setting_and_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_urls, "_installed", lambda module: False)
    result = CliRunner().invoke(
        app, ["worker", "--broker-url", "amqp://guest:guest@127.0.0.1/"], prog_name="jobqueue"
    )
    assert result.exit_code == 2, result.output
    assert "JOBQUEUE_BROKER_URL" in result.output
    assert "pip install 'jobqueue[rabbitmq]'" in result.output
    assert "guest:guest" not in result.output, "the password is not shown"


def test_every_name_starts_with_jobqueue() -> None:
    with pytest.raises(BrokerConfigError, match="must start with 'jobqueue'"):
        check_broker_url("redis://127.0.0.1/0", "celery")
    with pytest.raises(ValidationError, match="must start with 'jobqueue'"):
        Settings(broker_prefix="myapp")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://guest:secret@127.0.0.1:5672/prod", "amqp://guest:***@127.0.0.1:5672/prod"),
        ("redis://:secret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_the_shown_url_has_no_password(url: str, shown: str) -> None:
    assert mask_url(url) == shown


async def test_local_signals_reach_the_subscribers_of_their_channels() -> None:
    signals = LocalSignals()
    async with signals.subscribe([CANCEL]) as cancels:
        signals.publish(READY)
        signals.publish(CANCEL, "job-1")
        assert await asyncio.wait_for(cancels.__anext__(), 1) == Signal(CANCEL, "job-1")
    assert signals.health() is None and signals.state == "local"
