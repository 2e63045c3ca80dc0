"""A target whose answers the test releases: ``/gate/{key}`` holds each request until the test
calls ``release(key)``, so a test decides when a task finishes, without sleeps::

    with GatedTarget() as target:
        url = target.url("/gate/a")            # ?status=500 answers that status instead
        ...
        target.wait_arrived("a")               # the task's call is in flight
        target.release("a")                    # now it answers

Served by uvicorn on 127.0.0.1 in a daemon thread (:class:`ThreadedServer`).
"""

from __future__ import annotations

import asyncio
import threading
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.threaded_server import ThreadedServer

#: how long a held request waits for its release at most (the test failed if it gets there)
HOLD_SECONDS = 60.0


class _Gates:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.released: set[str] = set()
        self.arrived: dict[str, int] = {}

    def arrive(self, key: str) -> None:
        with self.cond:
            self.arrived[key] = self.arrived.get(key, 0) + 1
            self.cond.notify_all()

    def hold(self, key: str) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: key in self.released, HOLD_SECONDS)


class GatedTarget(ThreadedServer):
    def __init__(self) -> None:
        self.gates = _Gates()
        super().__init__(
            Starlette(routes=[Route("/gate/{key}", self._gate, methods=["GET", "POST"])]),
            name="gated-target",
            lifespan="off",
        )

    async def _gate(self, request: Request) -> JSONResponse:
        key = request.path_params["key"]
        self.gates.arrive(key)
        # A thread waits for the release, so that the server's loop keeps serving other gates.
        released = await asyncio.to_thread(self.gates.hold, key)
        status = int(request.query_params.get("status", "200"))
        body = {"key": key, "released": released, "status": status}
        if status >= 400:
            body["message"] = f"gate {key} answered {status} on purpose"
        return JSONResponse(body, status_code=status)

    def release(self, key: str) -> None:
        with self.gates.cond:
            self.gates.released.add(key)
            self.gates.cond.notify_all()

    def release_all(self) -> None:
        with self.gates.cond:
            self.gates.released.update(self.gates.arrived)
            self.gates.cond.notify_all()

    def wait_arrived(self, key: str, count: int = 1, timeout: float = 20.0) -> None:
        """Until ``count`` requests reached ``/gate/{key}``."""
        deadline = time.monotonic() + timeout
        with self.gates.cond:
            while self.gates.arrived.get(key, 0) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no request reached /gate/{key} within {timeout} s")
                self.gates.cond.wait(left)

    def stop(self) -> None:
        with self.gates.cond:
            self.gates.released.update(self.gates.arrived)
            self.gates.cond.notify_all()
        super().stop()
