"""Secret values: which headers are secret, and the one mask every read path and log line uses.
Pure, no imports of ours.

Two moments mask a response's headers. When an attempt's response is *stored*, the values of
``Set-Cookie``, of the names configured in ``EngineConfig.secret_header_names`` and of the
task's ``secret_headers`` are replaced (so neither the API nor a downstream template ever sees
them). When anything is *shown* (the API's documents, events, log lines), :func:`mask_view`
masks what it finds: the values of secret headers, the userinfo of URLs (``https://u:p@host``),
and secret header values echoed in text (``Authorization: Bearer ...``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: what a secret value is replaced with
MASK = "***"
#: header names (lower case) whose values the API never returns
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)
#: header names (lower case) whose values are never stored, whatever the configuration
STORED_SECRET_HEADERS = frozenset({"set-cookie"})
#: keys of a document whose value is a header mapping
_HEADER_KEYS = frozenset({"headers", "response_headers", "request_headers"})
#: ``scheme://userinfo@``: the userinfo may be a password or a token
#: keys whose value is shown as it is: what the target answered is data, not our secret
_VERBATIM_KEYS = frozenset({"response_body", "output"})
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#@\s\"'<>]+@")


def mask_headers(
    headers: Any, extra: frozenset[str] = frozenset(), *, secret: frozenset[str] = SECRET_HEADERS
) -> Any:
    """``headers`` with the value of every name in ``secret | extra`` (any case) replaced by
    :data:`MASK`; anything that is not a dict (``None``, say) is returned as it is."""
    if not isinstance(headers, dict):
        return headers
    names = secret | extra if extra else secret
    return {k: (MASK if str(k).lower() in names else v) for k, v in headers.items()}


def _echo_pattern(names: frozenset[str]) -> re.Pattern[str]:
    """``Name: value``, ``'Name': 'value'``, ``"Name"="value"`` for any secret name."""
    alternatives = "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))
    return re.compile(rf"(?i)(?<![\w-])({alternatives})([\"']?\s*[:=]\s*[\"']?)([^\"'\r\n,;}}\]]+)")


_DEFAULT_ECHO = _echo_pattern(SECRET_HEADERS)


def mask_text(text: str, extra: frozenset[str] = frozenset()) -> str:
    """``text`` with URL userinfo and echoed secret header values replaced by :data:`MASK`."""
    pattern = _echo_pattern(SECRET_HEADERS | extra) if extra else _DEFAULT_ECHO
    text = _USERINFO.sub(rf"\1{MASK}@", text)
    return pattern.sub(rf"\1\2{MASK}", text)


def mask_view(document: Any, extra: frozenset[str] = frozenset()) -> Any:
    """A document as it may be shown: every read path (API documents, events) passes its
    output through this. Header mappings (keys ``headers``, ``response_headers``,
    ``request_headers``) get their secret values masked; every string is passed through
    :func:`mask_text`, except response bodies (the target's data, shown as stored).
    ``extra``: more secret header names (lower case)."""
    if isinstance(document, dict):
        out: dict[Any, Any] = {}
        for key, value in document.items():
            if key in _HEADER_KEYS and isinstance(value, dict):
                value = mask_headers(value, extra)
            out[key] = value if key in _VERBATIM_KEYS else mask_view(value, extra)
        return out
    if isinstance(document, list):
        return [mask_view(item, extra) for item in document]
    if isinstance(document, str):
        return mask_text(document, extra)
    return document


class SecretLogFilter(logging.Filter):
    """Masks URL userinfo and secret header values in a record's message and traceback.

    Put it on a handler: every record that handler writes, from any logger, is masked.
    """

    def __init__(self, extra: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.extra = frozenset(name.lower() for name in extra)
        self._plain = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message, self.extra)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._plain.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text, self.extra)
        return True
