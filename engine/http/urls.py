"""URLs of outgoing requests: query merging, validation, redirect targets.

Both executors receive the URL as one already-encoded :class:`yarl.URL` built here, so they put
the same bytes on the wire.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from urllib.parse import quote, urlsplit, urlunsplit

from yarl import URL

from engine.http.messages import HttpError

ALLOWED_SCHEMES = frozenset({"http", "https"})

#: characters left as they are in a query key or value (RFC 3986 unreserved); the rest,
#: ``&``, ``=``, ``+`` and space included, are percent-encoded (space as ``%20``)
_QUERY_SAFE = "-._~"

#: a host made only of numeric / hex labels ("127.1", "0x7f.0.0.1", "2130706433"): the C
#: resolver maps these onto addresses, so only the canonical dotted-quad form is accepted
_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+))*\.?$", re.I)
_CANONICAL_IPV4 = re.compile(
    r"^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$"
)


def scalar_text(what: str, value: object) -> str:
    """A query parameter or header value as text: bool as ``true``/``false``, numbers as written;
    anything else but a string raises ``invalid_request`` naming ``what``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise HttpError(
        "invalid_request",
        f"{what}: {type(value).__name__} value {value!r} is not a string, number or boolean",
    )


def _param_pairs(params: Mapping[str, object]) -> Iterator[tuple[str, str]]:
    for key, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if item is not None:
                yield key, scalar_text(f"query parameter {key!r}", item)


def merge_url_params(url: str, params: Mapping[str, object]) -> str:
    """Return ``url`` with ``params`` appended to its own query string, never replacing it.

    The URL's query is kept byte for byte and ``params`` follow it, so a key present in both is
    sent twice (URL's first). A list gives the key once per item; ``True``/``False`` give
    ``true``/``false``; a ``None`` value (or ``None`` item) leaves the key out. Keys and values
    are percent-encoded (space as ``%20``, ``+`` as ``%2B``). Anything else (a dict, NaN)
    raises :class:`HttpError` ``invalid_request``.
    """
    pairs = list(_param_pairs(params))
    if not pairs:
        return url
    extra = "&".join(
        f"{quote(key, safe=_QUERY_SAFE)}={quote(value, safe=_QUERY_SAFE)}" for key, value in pairs
    )
    parts = urlsplit(url)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def parse_target_url(raw: str | URL) -> URL:
    """Parse, normalise (percent-encoding, IDNA host) and check one target URL.

    Raises ``invalid_request`` unless the URL is absolute ``http``/``https`` with a host; the
    fragment is dropped (it is never sent).
    """
    try:
        url = raw if isinstance(raw, URL) else URL(raw)
        host = url.raw_host
    except (ValueError, TypeError, UnicodeError) as exc:
        raise HttpError("invalid_request", f"malformed URL: {exc}") from exc
    if url.scheme not in ALLOWED_SCHEMES:
        raise HttpError(
            "invalid_request",
            f"URL scheme {url.scheme!r} is not allowed: only http and https URLs can be called",
        )
    if not host:
        raise HttpError("invalid_request", "URL has no host")
    if _NUMERIC_HOST.match(host) and not _CANONICAL_IPV4.match(host.rstrip(".")):
        raise HttpError("invalid_request", f"host {host!r} is not a canonical IPv4 address")
    return url.with_fragment(None) if url.raw_fragment else url


def origin(url: URL) -> tuple[str, str | None, int | None]:
    return url.scheme, url.raw_host, url.port


def describe_target(url: URL) -> str:
    """``host:port`` of a URL, for messages (the path and query may hold secrets)."""
    host = url.raw_host or ""
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{url.port}"
