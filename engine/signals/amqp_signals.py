"""Signals over RabbitMQ (aio-pika): one topic exchange, one queue per process.

Every process declares the exchange ``<prefix>.signals`` (``jobqueue.signals``; not durable:
whoever connects declares it again) and its own queue ``<prefix>.<host>.<pid>.<id>``,
exclusive and auto-delete, so it goes away with the process's connection. The queue is bound
to the routing keys ``ready``, ``cancel``, ``events`` and ``schedules``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

from ulid import ULID

from engine.signals.base import CHANNELS, BrokerSignals, Signal

# aiormq logs a lost connection as an error with a traceback, from every channel: the backend
# reports the broker's state once itself. Left alone when an operator set their level.
for _name in ("aiormq", "aio_pika"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.CRITICAL)


class AmqpSignals(BrokerSignals):
    def __init__(self, url: str, prefix: str) -> None:
        super().__init__(url, prefix)
        self._connection: Any = None
        self._exchange: Any = None
        self.queue_name = f"{prefix}.{socket.gethostname()}.{os.getpid()}.{str(ULID())[-8:]}"

    @property
    def exchange_name(self) -> str:
        return f"{self.prefix}.signals"

    def name(self, channel: str) -> str:
        return channel

    async def _session(self) -> None:
        import aio_pika

        closed = asyncio.Event()
        reasons: list[BaseException] = []

        def on_close(_sender: Any, exc: BaseException | None = None, *_: Any) -> None:
            if isinstance(exc, BaseException):
                reasons.append(exc)
            closed.set()

        self._connection = await aio_pika.connect(self.url, timeout=5)
        self._connection.close_callbacks.add(on_close)
        channel = await self._connection.channel()
        channel.close_callbacks.add(on_close)
        exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=False
        )
        queue = await channel.declare_queue(self.queue_name, exclusive=True, auto_delete=True)
        for key in CHANNELS:
            await queue.bind(exchange, routing_key=key)
        await queue.consume(self._on_message, no_ack=True)
        self._exchange = exchange
        self._connected()
        await closed.wait()
        if reasons:
            raise ConnectionError(str(reasons[0]))

    async def _on_message(self, message: Any) -> None:
        key = message.routing_key
        if key in CHANNELS:
            self._deliver(Signal(key, message.body.decode()))

    async def _send(self, signals: list[Signal]) -> None:
        import aio_pika

        exchange = self._exchange
        if exchange is None:
            return
        for signal in signals:
            await exchange.publish(
                aio_pika.Message(signal.payload.encode()), routing_key=signal.channel
            )

    async def _disconnect(self) -> None:
        self._exchange = None
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
