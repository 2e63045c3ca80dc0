"""Broker URLs: which backend a URL asks for, whether its client is installed, and the URL as it
may be shown (no password)."""

from __future__ import annotations

import importlib.util
from urllib.parse import urlsplit, urlunsplit

#: URL scheme -> (backend, the module its client provides, the extra that installs it)
SCHEMES: dict[str, tuple[str, str, str]] = {
    "redis": ("redis", "redis.asyncio", "redis"),
    "rediss": ("redis", "redis.asyncio", "redis"),
    "unix": ("redis", "redis.asyncio", "redis"),
    "amqp": ("rabbitmq", "aio_pika", "rabbitmq"),
    "amqps": ("rabbitmq", "aio_pika", "rabbitmq"),
}

#: every name a broker backend creates starts with this
NAME_PREFIX = "jobqueue"


class BrokerConfigError(ValueError):
    """A broker URL or prefix that cannot work: unknown scheme, client not installed."""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def backend_of(url: str) -> str:
    """``redis`` or ``rabbitmq``; :class:`BrokerConfigError` when the URL asks for neither or
    when the client it needs is not installed (the message names the extra to install)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise BrokerConfigError(f"unknown broker URL scheme {scheme + '://'!r}; use one of {known}")
    backend, module, extra = SCHEMES[scheme]
    if not _installed(module.split(".")[0]):
        raise BrokerConfigError(
            f"{scheme}:// needs the {module.split('.')[0]} client, which is not "
            f"installed: pip install 'jobqueue[{extra}]'"
        )
    return backend


def check_prefix(prefix: str) -> str:
    if not prefix.startswith(NAME_PREFIX):
        raise BrokerConfigError(f"the broker prefix must start with {NAME_PREFIX!r}: {prefix!r}")
    if not prefix.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise BrokerConfigError(f"the broker prefix may hold letters, digits, - _ . : {prefix!r}")
    return prefix


def mask_url(url: str) -> str:
    """The URL without its password (``amqp://guest:***@host/vhost``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
