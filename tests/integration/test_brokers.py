"""Signals over a real Redis and a real RabbitMQ, between engines that share only the database
and the broker (as processes on different machines do).

The engines poll every 600 s, their SQLite file watch is off and their cancel watch waits 600 s:
whatever happens sooner was carried by the broker.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from api.settings import Settings
from engine import Engine, EngineConfig
from engine.jobs import feed
from engine.signals import CANCEL, EVENTS, READY, RESUMED, Signal, open_signals
from schemas.jobs import JobSpec, parse_job_document
from tests.integration.target_server import TargetServer
from tests.support.brokers import Broker, Outage
from tests.support.config import make_config
from tests.support.processes import Server, env_for, free_port, poll, script

SLOW = 600.0
WAIT = 30.0


def broker_config(db_url: str, url: str, prefix: str, **overrides: object) -> EngineConfig:
    values: dict[str, object] = {
        "broker_url": url,
        "broker_prefix": prefix,
        "poll_interval": SLOW,
        "cancel_check_interval": SLOW,
        "change_check_interval": 0,
        "reaper_interval": SLOW,
        "default_timeout": SLOW,  # a call ends by a cancel, never by its timeout
    }
    values.update(overrides)
    return make_config(db_url, **values)


@asynccontextmanager
async def engines(config: EngineConfig, count: int) -> AsyncIterator[list[Engine]]:
    opened: list[Engine] = []
    try:
        for _ in range(count):
            opened.append(await Engine.open(config))
        yield opened
    finally:
        for engine in opened:
            await engine.close()


async def until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    async def wait() -> None:
        while not check():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(wait(), timeout)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {timeout} s") from None


async def job_status(engine: Engine, job_id: str) -> str:
    return str((await engine.get_job(job_id))["status"])


async def until_status(engine: Engine, job_id: str, wanted: set[str]) -> str:
    async def wait() -> str:
        while (status := await job_status(engine, job_id)) not in wanted:
            await asyncio.sleep(0.05)
        return status

    return await asyncio.wait_for(wait(), WAIT)


def single_call(url: str) -> JobSpec:
    return parse_job_document({"url": url})


async def test_a_signal_reaches_every_other_process(broker: Broker) -> None:
    sender = open_signals(broker.url, broker.prefix)
    receivers = [open_signals(broker.url, broker.prefix) for _ in range(2)]
    for signals in (sender, *receivers):
        await signals.start()
    try:
        subs = [r.subscribe([CANCEL, EVENTS]) for r in receivers]
        sender.publish(READY)  # nobody here listens to it
        sender.publish(EVENTS, "job-7")
        for sub in subs:
            assert await asyncio.wait_for(sub.__anext__(), WAIT) == Signal(EVENTS, "job-7")
        health = sender.health()
        assert health is not None and health["state"] == "connected"
        assert "guest:guest" not in health["url"]
    finally:
        for signals in (sender, *receivers):
            await signals.close()


async def test_a_submit_wakes_a_worker_of_another_engine(
    broker: Broker, tmp_path: Path, target_server: TargetServer
) -> None:
    config = broker_config(f"sqlite+aiosqlite:///{tmp_path / 'q.db'}", broker.url, broker.prefix)
    async with engines(config, 2) as (api, workers):
        workers.start_worker()
        # One after the other: each is submitted while the worker waits out its 600 s poll.
        for i in range(3):
            job = await api.submit(single_call(target_server.url(f"/json?i={i}")), single_call=True)
            assert await until_status(api, job.job_id, {"succeeded", "failed"}) == "succeeded"


async def test_a_cancel_interrupts_the_call_in_another_engine(
    broker: Broker, tmp_path: Path, target_server: TargetServer
) -> None:
    config = broker_config(f"sqlite+aiosqlite:///{tmp_path / 'q.db'}", broker.url, broker.prefix)
    async with engines(config, 2) as (api, workers):
        workers.start_worker()
        submitted = await api.submit(
            single_call(target_server.url("/slow?seconds=60")), single_call=True
        )
        await until(lambda: len(target_server.requests) == 1, "the call started")
        assert await api.cancel(submitted.job_id) == "canceled"
        await until(lambda: target_server.requests[0].outcome == "cancelled", "call interrupted")


async def test_events_of_another_engine_reach_a_stream_through_the_broker(
    broker: Broker, tmp_path: Path, target_server: TargetServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream on one engine follows a job that another engine changes: with the readers'
    backstop query at 600 s and no file watch, only the broker's ``events`` signal wakes it."""
    monkeypatch.setattr(feed, "BACKSTOP_SECONDS", SLOW)
    config = broker_config(f"sqlite+aiosqlite:///{tmp_path / 'q.db'}", broker.url, broker.prefix)
    async with engines(config, 2) as (api, other):
        job = await api.submit(single_call(target_server.url("/slow?seconds=60")), single_call=True)
        stream = api.job_events(job.job_id)
        assert (await asyncio.wait_for(stream.__anext__(), WAIT))["type"] == "snapshot"
        following = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0)  # the reader waits for news now
        assert await other.cancel(job.job_id) == "canceled"
        message = await asyncio.wait_for(following, WAIT)
        assert (message["type"], message["status"]) == ("task", "canceled")
        await stream.aclose()


@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
async def test_a_broker_outage_falls_back_to_polling_and_resumes(
    kind: str, tmp_path: Path, target_server: TargetServer, caplog: pytest.LogCaptureFixture
) -> None:
    outage = Outage(kind, tmp_path)
    outage.up()
    try:
        config = broker_config(
            f"sqlite+aiosqlite:///{tmp_path / 'q.db'}", outage.url, "jobqueue", poll_interval=0.2
        )
        async with engines(config, 2) as (api, workers):
            workers.start_worker()
            resumed = workers.signals.subscribe([READY])
            caplog.set_level(logging.INFO, logger="jobqueue.signals")
            outage.down()
            await until(lambda: api.health()["broker"]["state"] == "down", "api sees it down")
            await until(lambda: workers.signals.state == "down", "worker sees it down")
            jobs = [
                await api.submit(single_call(target_server.url(f"/json?i={i}")), single_call=True)
                for i in range(5)
            ]
            for job in jobs:  # the poll found them
                assert await until_status(api, job.job_id, {"succeeded", "failed"}) == "succeeded"
            await asyncio.sleep(1.0)  # several reconnection attempts fail meanwhile
            outage.up()
            await until(lambda: api.signals.connected and workers.signals.connected, "back")
            assert await asyncio.wait_for(_first(resumed, RESUMED), WAIT) == Signal(RESUMED)
            api.signals.publish(READY)
            assert await asyncio.wait_for(_first(resumed, READY), WAIT) == Signal(READY)
    finally:
        outage.down()
    downs = [r for r in caplog.records if "falling back to polling" in r.getMessage()]
    assert len(downs) == 2, "once per engine, not once per attempt"
    assert all(r.exc_info is None for r in caplog.records), "no traceback"
    assert sum("is back" in r.getMessage() for r in caplog.records) == 2


async def _first(subscription: AsyncIterator[Signal], channel: str) -> Signal:
    async for signal in subscription:
        if signal.channel == channel:
            return signal
    raise AssertionError("the subscription ended")


async def test_healthz_shows_the_broker_and_stays_ok_while_it_is_down(
    tmp_path: Path, rabbitmq_broker: Broker
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    closed = f"redis://:secret@127.0.0.1:{free_port()}/0"
    for url, state in ((rabbitmq_broker.url, "connected"), (closed, "down")):
        engine = await Engine.open(make_config(db_url, broker_url=url))
        try:
            app = create_app(Settings(db_url=db_url), engine=engine)
            app.state.engine = engine
            app.state.settings = Settings(db_url=db_url)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                response = await http.get("/healthz")
        finally:
            await engine.close()
        assert response.status_code == 200, response.text
        shown = response.json()["broker"]
        assert shown["state"] == state
        assert "secret" not in shown["url"] and "guest:guest" not in shown["url"]
        assert shown["url"].endswith(url.rsplit("@", 1)[-1])


@pytest.mark.slow
def test_a_server_starts_and_works_while_its_broker_is_down(
    tmp_path: Path, target_server: TargetServer
) -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    with Server(tmp_path, tmp_path / "q.db", JOBQUEUE_BROKER_URL=url) as server:
        health = httpx.get(f"{server.url}/healthz", timeout=10)
        assert health.status_code == 200, health.text
        assert health.json()["broker"] == {"url": url.replace("secret", "***"), "state": "down"}
        job = httpx.post(f"{server.url}/api/v1/jobs", json={"url": target_server.url("/json")})
        job_id = job.json()["job_id"]
        poll(
            lambda: httpx.get(f"{server.url}/api/v1/jobs/{job_id}").json()["status"] == "succeeded",
            timeout=WAIT,
            what="the job ran without the broker",
        )
        output = server.output()
    assert output.count("falling back to polling") == 1, output
    assert "Traceback" not in output


@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
async def test_while_the_broker_is_down_cancels_are_checked_in_the_database(
    kind: str, tmp_path: Path, target_server: TargetServer
) -> None:
    """Connected, the cancel check would wait 600 s (the poll interval); down, it runs every
    ``cancel_check_interval`` again."""
    outage = Outage(kind, tmp_path)
    outage.up()
    try:
        config = broker_config(
            f"sqlite+aiosqlite:///{tmp_path / 'q.db'}",
            outage.url,
            "jobqueue",
            cancel_check_interval=0.1,
        )
        async with engines(config, 2) as (api, workers):
            workers.start_worker()
            job = await api.submit(
                single_call(target_server.url("/slow?seconds=60")), single_call=True
            )
            await until(lambda: len(target_server.requests) == 1, "the call started")
            outage.down()
            await until(lambda: workers.signals.state == "down", "worker sees it down")
            assert await api.cancel(job.job_id) == "canceled"
            await until(lambda: target_server.requests[0].outcome == "cancelled", "interrupted")
    finally:
        outage.down()


@pytest.mark.slow
def test_a_run_on_its_private_database_uses_no_broker(
    tmp_path: Path, target_server: TargetServer
) -> None:
    """Nobody else sees ``jobqueue run``'s private database: a broker would only slow it down
    (here one that is down)."""
    workflow = tmp_path / "one.yaml"
    workflow.write_text(f"method: GET\nurl: {target_server.url('/json')}\n")
    env = env_for(
        None,
        JOBQUEUE_ALLOW_PRIVATE_NETWORKS="true",
        JOBQUEUE_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    done = subprocess.run(
        [script("jobqueue"), "run", str(workflow), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done
    assert "broker" not in done.stderr, done.stderr
