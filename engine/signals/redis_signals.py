"""Signals over Redis pub/sub (redis-py's asyncio client).

Channels are ``<prefix>:ready``, ``<prefix>:cancel`` ... (``jobqueue:ready`` by default). Pub/sub
keeps nothing: a process that is away misses what was published meanwhile, which is why it looks
at the database when it comes back (:data:`~engine.signals.base.RESUMED`). Pub/sub channels are
shared by every database number of a server: give installations that share a server their own
prefix.
"""

from __future__ import annotations

import contextlib
from typing import Any

from engine.signals.base import CHANNELS, BrokerSignals, Signal


class RedisSignals(BrokerSignals):
    #: seconds between the pings that find a silently dead connection
    health_check_interval = 5.0

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__(url, prefix)
        self._client: Any = None
        self._pubsub: Any = None

    def name(self, channel: str) -> str:
        return f"{self.prefix}:{channel}"

    async def _session(self) -> None:
        import redis.asyncio as redis

        self._client = redis.Redis.from_url(
            self.url,
            socket_connect_timeout=5,
            socket_keepalive=True,
            health_check_interval=self.health_check_interval,
        )
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        channels = {self.name(c): c for c in CHANNELS}
        await self._pubsub.subscribe(*channels)
        self._connected()
        while True:
            message = await self._pubsub.get_message(timeout=self.health_check_interval)
            if message is None or message.get("type") != "message":
                continue
            channel = channels.get(_text(message["channel"]))
            if channel is not None:
                self._deliver(Signal(channel, _text(message["data"])))

    async def _send(self, signals: list[Signal]) -> None:
        client = self._client
        if client is None:
            return
        async with client.pipeline(transaction=False) as pipe:
            for signal in signals:
                pipe.publish(self.name(signal.channel), signal.payload)
            await pipe.execute()

    async def _disconnect(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        client, self._client = self._client, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
