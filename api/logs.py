"""Logging for every JobQueue process, set up from ``JOBQUEUE_LOG_LEVEL`` and
``JOBQUEUE_LOG_FORMAT`` (``text``, or ``json``: one JSON object a line).

Only the ``jobqueue`` loggers get our handler (uvicorn keeps its own, and nothing is set on the
root logger, so an application that configures it gets our records too); Alembic's per-migration
chatter is kept below INFO. Log lines carry ids and statuses, never request headers or bodies;
the handler's :class:`~engine.SecretLogFilter` masks URL userinfo and secret header values that
an error message may echo, in every record it writes.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from engine import SecretLogFilter

#: attributes every LogRecord has; anything else on a record came from ``extra=``
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (a redirected or captured
    stderr included), not to the stream that was current when logging was set up."""

    def __init__(self) -> None:
        super().__init__()
        self._jobqueue = True

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data |= {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if record.exc_info:
            data["exception"] = record.exc_text or self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def configure_logging(
    level: str = "info", fmt: str = "text", secret_headers: frozenset[str] = frozenset()
) -> None:
    """Idempotent: calling it again replaces the handler (tests, several app instances).
    ``secret_headers``: more header names whose values are masked (JOBQUEUE_SECRET_HEADERS)."""
    logger = logging.getLogger("jobqueue")
    for handler in list(logger.handlers):
        if getattr(handler, "_jobqueue", False):
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.addFilter(SecretLogFilter(secret_headers))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
