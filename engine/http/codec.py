"""Bytes in and out: request headers and body, response headers and body, Retry-After."""

from __future__ import annotations

import base64
import codecs
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import orjson

from engine.http.messages import HttpError
from engine.http.urls import scalar_text
from schemas.jobs import HTTP_TOKEN

USER_AGENT = "jobqueue/0.1"

#: sent unless the request sets them (any case); both executors send exactly these
DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (
    ("User-Agent", USER_AGENT),
    ("Accept", "*/*"),
    ("Accept-Encoding", "gzip, deflate"),
)

#: framing is the executor's business: a caller's value would contradict the body sent
_DROPPED_HEADERS = frozenset({"content-length", "transfer-encoding"})

_BAD_VALUE = re.compile(r"[\r\n\x00]")

_TEXT_TYPES = frozenset(
    {
        "application/javascript",
        "application/x-www-form-urlencoded",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/x-ndjson",
        "application/graphql",
    }
)


def request_headers(headers: Mapping[str, object], *, content_type: str | None) -> dict[str, str]:
    """The defaults overridden by ``headers`` (case-insensitively), checked for injection.

    ``content_type`` is added when the request has a body and sets no Content-Type. A number or
    boolean value is sent as text (``true``/``false``), a ``None`` value drops the header.
    """
    merged: dict[str, tuple[str, str]] = {name.lower(): (name, v) for name, v in DEFAULT_HEADERS}
    for name, value in headers.items():
        if not isinstance(name, str) or not HTTP_TOKEN.fullmatch(name):
            raise HttpError("invalid_request", f"invalid header name {name!r}")
        if value is None:
            continue
        value = scalar_text(f"header {name!r}", value)
        if _BAD_VALUE.search(value):
            raise HttpError("invalid_request", f"header {name!r}: value has CR, LF or NUL")
        if name.lower() not in _DROPPED_HEADERS:
            merged[name.lower()] = (name, value)
    if content_type is not None and "content-type" not in merged:
        merged["content-type"] = ("Content-Type", content_type)
    return dict(merged.values())


def encode_body(body: object) -> tuple[bytes | None, str | None]:
    """``(content, default Content-Type)`` for a request body (see ``HttpRequest.body``)."""
    if body is None:
        return None, None
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    try:
        return orjson.dumps(body), "application/json"
    except TypeError as exc:
        raise HttpError("invalid_request", f"body is not JSON-serialisable: {exc}") from exc


def response_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased names; repeated headers joined with ``", "`` in arrival order."""
    joined: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


def _media_type(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    media, _, rest = content_type.partition(";")
    charset = None
    for param in rest.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').strip("'") or None
    return media.strip().lower(), charset


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _is_text(media: str) -> bool:
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith("+xml")


def _codec_name(charset: str | None) -> str:
    if charset:
        try:
            return codecs.lookup(charset).name
        except LookupError:
            pass
    return "utf-8"


def _decode(data: bytes, encoding: str, *, truncated: bool, errors: str) -> str:
    # a cut body may end inside a multi-byte character: drop that partial tail, nothing else
    return codecs.getincrementaldecoder(encoding)(errors).decode(data, final=not truncated)


def decode_body(data: bytes, content_type: str | None, *, truncated: bool) -> tuple[object, bool]:
    """``(body, is_base64)`` for the bytes read; see ``HttpResponse.body`` for the rules."""
    if not data:
        return None, False
    media, charset = _media_type(content_type)
    encoding = _codec_name(charset)
    if _is_json(media) and not truncated:
        try:
            return orjson.loads(data if encoding == "utf-8" else data.decode(encoding)), False
        except (orjson.JSONDecodeError, UnicodeDecodeError):
            pass
    if charset or _is_json(media) or _is_text(media):
        return _decode(data, encoding, truncated=truncated, errors="replace"), False
    try:
        return _decode(data, "utf-8", truncated=truncated, errors="strict"), False
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), True


def retry_after_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header, or ``None`` if absent or invalid.

    The header is found whatever its case. Its value is delay-seconds (``"120"``; a decimal is
    accepted) or an HTTP-date, counted from ``now`` (default: the current UTC time); a date in
    the past gives ``0.0``.
    """
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
