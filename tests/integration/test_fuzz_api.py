"""Schemathesis against the real server's OpenAPI document: generated requests (valid and not)
to every operation must never answer 500, nor answer anything the document does not declare
(status, content type, headers, body schema). Run with the API open and with a key.

The server runs no worker, so the generated jobs never call out; the examples per operation
are bounded to keep the run short.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from api.auth import OPEN_PATHS
from tests.support.api_server import ApiServer

KEY = "fuzz-key-0123456789abcdef"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
BOUNDED = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


def _server(tmp: Path, **extra: Any) -> ApiServer:
    return ApiServer(tmp / "fuzz.db", embedded_worker=False, log_level="error", **extra)


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with _server(tmp_path_factory.mktemp("fuzz-open")) as server:
        yield server


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with _server(tmp_path_factory.mktemp("fuzz-key"), admin_keys=(f"fuzz:{KEY}",)) as server:
        yield server


def _fuzz(server: ApiServer, headers: dict[str, str], *, keys: bool = True) -> list[str]:
    """Every operation of the server's document, ``max_examples`` generated cases each (with
    negative ones: invalid bodies and parameters); returns what failed, one line each.
    ``keys=False`` leaves out creating keys (which would close an open API halfway)."""
    schema = schemathesis.openapi.from_url(server.url("/openapi.json"))
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    if not keys:
        schema = schema.exclude(method="POST", path="/api/v1/keys")
    failures: list[str] = []
    calls: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @BOUNDED
        def run(case: Any) -> None:
            label = f"{case.method} {case.path}"
            calls[label] = calls.get(label, 0) + 1
            case.call_and_validate(base_url=server.base_url, headers=headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis reports a FailureGroup
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert len(calls) >= 20 and sum(calls.values()) >= 200, calls
    return failures


def test_no_server_error_and_only_declared_answers_without_keys(open_server: ApiServer) -> None:
    assert _fuzz(open_server, {}, keys=False) == []


def test_no_server_error_and_only_declared_answers_with_a_key(keyed_server: ApiServer) -> None:
    assert _fuzz(keyed_server, {"Authorization": f"Bearer {KEY}"}) == []


def test_without_the_key_every_operation_but_the_open_ones_is_401(keyed_server: ApiServer) -> None:
    schema = schemathesis.openapi.from_url(keyed_server.url("/openapi.json"))
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(BOUNDED, max_examples=3)
        def run(case: Any) -> None:
            response = case.call(base_url=keyed_server.base_url)
            if case.path in OPEN_PATHS:  # health checks, and callbacks (the token guards them)
                return
            assert response.status_code == 401, (case.method, case.path, response.text)
            case.validate_response(response, checks=CHECKS)

        run()
