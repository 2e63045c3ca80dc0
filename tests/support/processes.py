"""Real child processes for tests: `jobqueue serve` / `worker` / `uvicorn` on 127.0.0.1.

Output goes to a log file; processes are stopped (then killed) on exit; waits are polls with a
timeout, never fixed sleeps.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[2]
#: the console scripts of the environment running the tests
BIN = Path(sys.executable).parent

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def poll(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s (last value {value!r})")
        time.sleep(interval)


def script(name: str) -> str:
    """A console script of the environment running the tests (``jobqueue``, ``uvicorn``)."""
    path = BIN / name
    assert path.exists(), f"{path} is missing: is the package installed in this environment?"
    return str(path)


def env_for(db: Path | None, **settings: str) -> dict[str, str]:
    """The environment of a child process: no JOBQUEUE_* of the shell, these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")}
    env["PYTHONUNBUFFERED"] = "1"
    if db is not None:
        env["JOBQUEUE_DB_URL"] = f"sqlite+aiosqlite:///{db}"
    env.update(settings)
    return env


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


class Proc:
    """A child process whose output goes to a log file; stopped (then killed) on exit."""

    def __init__(self, args: list[str], *, env: dict[str, str], log: Path, cwd: Path = ROOT):
        self.args = args
        self.log = log
        self._log_file = log.open("wb")
        self.popen = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")

    def wait_http_ok(self, url: str, timeout: float = 30.0) -> None:
        def answered() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"{self.args[0]} exited with {self.popen.returncode}:\n{self.output()}"
                )
            try:
                return httpx.get(url, timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        poll(answered, timeout=timeout, what=f"{url} answering 200")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._log_file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Server(Proc):
    """``jobqueue serve`` on 127.0.0.1; ``url`` is its base URL.

    ``port``: a free one unless given (a restart on the same port); ``log_name``: the log file
    in ``tmp_path`` (default ``serve-<port>.log``), so that a restart keeps the first log.
    """

    def __init__(
        self,
        tmp_path: Path,
        db: Path | None,
        *,
        port: int | None = None,
        log_name: str | None = None,
        **settings: str,
    ) -> None:
        port = port or free_port()
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        env = env_for(db, JOBQUEUE_ALLOW_PRIVATE_NETWORKS="true", JOBQUEUE_POLL_INTERVAL="0.05")
        env.update(settings)
        args = [script("jobqueue"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        super().__init__(args, env=env, log=tmp_path / (log_name or f"serve-{port}.log"))

    def __enter__(self) -> Self:
        try:
            self.wait_http_ok(f"{self.url}/healthz")
        except BaseException:
            self.stop()
            raise
        return self
