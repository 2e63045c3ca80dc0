"""Uploads that stall or break off, against a real uvicorn server and raw sockets."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from api.settings import Settings
from tests.support.live_app import LiveApp
from tests.support.processes import poll

DOCUMENT = b'{"url": "https://example.org/", "tags": ["upload"]}'


@pytest.fixture
def live(db_url: str) -> Iterator[LiveApp]:
    settings = Settings(db_url=db_url, embedded_worker=False, body_read_timeout=0.5)
    with LiveApp(settings) as app:
        yield app


def start_upload(port: int, path: str = "/api/v1/jobs") -> socket.socket:
    """Send the headers with the full Content-Length, then only half the body."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10.0)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(DOCUMENT)}\r\n\r\n"
    ).encode()
    sock.sendall(head + DOCUMENT[: len(DOCUMENT) // 2])
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; fails if it stays silent for 10 s."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"no answer, connection still open; got {received!r}") from None
        if not chunk:
            return received
        received += chunk


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/interface-masters"])
def test_stalled_body_is_answered_408_and_the_connection_closed(live: LiveApp, path: str) -> None:
    started = time.monotonic()
    with start_upload(live.port, path) as sock:
        answer = read_until_closed(sock)
    elapsed = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    assert status_line.startswith("HTTP/1.1 408"), answer
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    detail = json.loads(body)["detail"]
    assert detail["code"] == "request_timeout"
    assert "0.5 s" in detail["message"]
    assert 0.4 < elapsed < 10.0
    jobs = httpx.get(f"{live.base_url}/api/v1/jobs", timeout=10.0).json()
    assert jobs["items"] == [], "nothing is created from half a body"


def _server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(("jobqueue", "uvicorn"))]


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/interface-masters"])
def test_aborted_upload_is_one_info_line_without_traceback(
    live: LiveApp, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.DEBUG)
    start_upload(live.port, path).close()

    def logged() -> list[logging.LogRecord]:
        return [
            r
            for r in _server_records(caplog)
            if r.levelno >= logging.ERROR or "disconnected" in r.getMessage()
        ]

    (record,) = poll(logged, timeout=10.0, what="the server logging the aborted upload")
    assert record.levelno in (logging.INFO, logging.DEBUG), record.getMessage()
    assert record.exc_info is None
    assert record.getMessage() == (
        f"POST {path}: the client disconnected before sending the whole request body "
        f"(Content-Length {len(DOCUMENT)})"
    )
    assert httpx.get(f"{live.base_url}/healthz", timeout=10.0).status_code == 200
    assert not [r for r in _server_records(caplog) if r.levelno >= logging.WARNING]
    assert "Traceback" not in caplog.text
