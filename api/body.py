"""Read and decode a request body ourselves, so that every way it can be wrong is a clear 4xx:
too large (413), too slow to arrive (408), a Content-Type we do not read (415), not UTF-8,
malformed JSON or YAML, lone surrogates, numbers JSON cannot carry (422 with the place)."""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any

import orjson
from fastapi import Request

from engine import JobInvalid, Problem, TooLarge, join_pointer, parse_yaml_body

from .settings import Settings

_LONG_DIGITS = re.compile(rb"\d{19,}")
_MAX_INT = 2**63


class BodyError(Exception):
    """A request body we do not read; ``api.errors`` gives each subclass its status."""


class UnsupportedMedia(BodyError):
    """415: a Content-Type we do not read."""


class BodyTimeout(BodyError):
    """408: the client did not send the whole body within ``JOBQUEUE_BODY_READ_TIMEOUT``."""


async def read_document(request: Request, settings: Settings) -> Any:
    """The decoded JSON or YAML document of a request body: what every route with a body reads."""
    raw = await read_body(request, settings.max_request_bytes, settings.body_read_timeout)
    return decode_document(raw, request.headers.get("content-type"))


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The whole body, at most ``limit`` bytes, received within ``timeout`` seconds."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body is larger than {limit} bytes (JOBQUEUE_MAX_REQUEST_BYTES)")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(
                        f"request body is larger than {limit} bytes (JOBQUEUE_MAX_REQUEST_BYTES)"
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout(
            f"the request body did not arrive within {timeout:g} s ({size} bytes received)"
        ) from None
    return b"".join(chunks)


def _invalid(message: str, location: str = "") -> JobInvalid:
    return JobInvalid([Problem(code="invalid_body", message=message, location=location)])


def _check_numbers(value: Any, pointer: str = "") -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int) and not -_MAX_INT <= value < _MAX_INT:
        raise _invalid("integer does not fit in 64 bits", pointer or "/")
    if isinstance(value, float) and not math.isfinite(value):
        raise _invalid("number is not finite", pointer or "/")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_numbers(item, pointer + join_pointer([key]))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_numbers(item, f"{pointer}/{index}")


def decode_json(raw: bytes) -> Any:
    if not raw.strip():
        raise _invalid("request body is empty; send a JSON document")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _invalid(f"malformed JSON: {exc}") from None
    if _LONG_DIGITS.search(raw):
        # orjson reads integers beyond 64 bits as floats: re-read exactly, then refuse them.
        _check_numbers(json.loads(raw))
    return value


def decode_document(raw: bytes, content_type: str | None) -> Any:
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media in ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"):
        value = parse_yaml_body(raw)
        _check_numbers(value)
        return value
    if media == "application/json" or media.endswith("+json") or media in ("", "*/*"):
        return decode_json(raw)
    raise UnsupportedMedia(
        f"unsupported Content-Type {media!r}; send application/json or application/yaml"
    )
