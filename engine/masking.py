"""Secret header values: which headers are masked, and how. Pure, no imports of ours.

Two moments mask a response's headers. When an attempt's response is *stored*, the values of
``Set-Cookie`` and of the names configured in ``EngineConfig.secret_header_names`` are replaced
(so neither the API nor a downstream template ever sees them). When the API *shows* a stored
response, the values of :data:`SECRET_HEADERS` are replaced as well.
"""

from __future__ import annotations

from typing import Any

#: what a secret value is replaced with
MASK = "***"
#: header names (lower case) whose values the API never returns
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)
#: header names (lower case) whose values are never stored, whatever the configuration
STORED_SECRET_HEADERS = frozenset({"set-cookie"})


def mask_headers(
    headers: Any, extra: frozenset[str] = frozenset(), *, secret: frozenset[str] = SECRET_HEADERS
) -> Any:
    """``headers`` with the value of every name in ``secret | extra`` (any case) replaced by
    :data:`MASK`; anything that is not a dict (``None``, say) is returned as it is."""
    if not isinstance(headers, dict):
        return headers
    names = secret | extra if extra else secret
    return {k: (MASK if str(k).lower() in names else v) for k, v in headers.items()}
