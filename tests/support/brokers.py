"""Brokers for tests: the machine's Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672).

Each test gets names of its own: a private channel prefix on Redis (pub/sub channels are shared
by every database number), a private vhost on RabbitMQ (made with ``rabbitmqctl`` and deleted
after). A broker that is down skips the test with the reason, except under ``CI=true``, where
it fails it. :class:`PrivateRedis` is a ``redis-server`` of the test's own, to stop and start.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

import pytest
from ulid import ULID

from tests.support.processes import free_port, poll

REDIS_HOST = ("127.0.0.1", 6379)
RABBITMQ_HOST = ("127.0.0.1", 5672)


@dataclass(frozen=True)
class Broker:
    kind: str
    url: str
    prefix: str

    def settings(self) -> dict[str, str]:
        """The environment of a process that uses this broker."""
        return {"JOBQUEUE_BROKER_URL": self.url, "JOBQUEUE_BROKER_PREFIX": self.prefix}


def _reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def require(address: tuple[str, int], what: str) -> None:
    """Skip (fail under CI=true) when nothing listens at ``address``."""
    if _reachable(address):
        return
    message = f"{what} is not reachable at {address[0]}:{address[1]}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def private_prefix() -> str:
    return f"jobqueue-test-{str(ULID()).lower()}"


@pytest.fixture
def redis_broker() -> Broker:
    require(REDIS_HOST, "Redis")
    return Broker("redis", "redis://127.0.0.1:6379/0", private_prefix())


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


class PrivateVhost:
    """A RabbitMQ vhost of the test's own, guest allowed everything in it."""

    def __init__(self) -> None:
        self.name = f"jobqueue-test-{str(ULID()).lower()}"
        self.url = f"amqp://guest:guest@127.0.0.1:5672/{self.name}"

    def create(self) -> None:
        _rabbitmqctl("add_vhost", self.name)
        _rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")

    def delete(self) -> None:
        subprocess.run(["rabbitmqctl", "delete_vhost", self.name], capture_output=True, timeout=60)


@pytest.fixture
def rabbitmq_broker() -> Iterator[Broker]:
    require(RABBITMQ_HOST, "RabbitMQ")
    if shutil.which("rabbitmqctl") is None:
        if os.environ.get("CI"):
            pytest.fail("rabbitmqctl is not installed (needed for a private vhost)")
        pytest.skip("rabbitmqctl is not installed (needed for a private vhost)")
    vhost = PrivateVhost()
    vhost.create()
    try:
        yield Broker("rabbitmq", vhost.url, "jobqueue")
    finally:
        vhost.delete()


def vhost_name(broker: Broker) -> str:
    return broker.url.rsplit("/", 1)[1]


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> Broker:
    """Each test runs once per broker."""
    found: Broker = request.getfixturevalue(f"{request.param}_broker")
    return found


class PrivateRedis:
    """``redis-server --port <free> --save ''`` of the test's own, to stop and start again on
    the same port."""

    def __init__(self, workdir: Path) -> None:
        if shutil.which("redis-server") is None:
            message = "redis-server is not installed"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self._workdir)]
        self._log = (self._workdir / f"redis-{self.port}.log").open("ab")
        self._proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        poll(lambda: _reachable(("127.0.0.1", self.port)), timeout=20, what="redis-server up")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Outage:
    """A broker of the test's own to stop and start: a private ``redis-server``, or a private
    RabbitMQ vhost deleted (which closes every connection to it) and made again."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        if kind == "redis":
            self._redis = PrivateRedis(workdir)
            self.url = self._redis.url
        else:
            require(RABBITMQ_HOST, "RabbitMQ")
            self._vhost = PrivateVhost()
            self.url = self._vhost.url

    def up(self) -> None:
        if self.kind == "redis":
            self._redis.start()
        else:
            self._vhost.create()

    def down(self) -> None:
        if self.kind == "redis":
            self._redis.stop()
        else:
            self._vhost.delete()
