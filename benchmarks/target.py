"""The local HTTP target the benchmarks call, run in its own process.

``python -m benchmarks.target [--port N]`` binds 127.0.0.1 (an ephemeral port by default), prints
``PORT <n>`` on its first stdout line, and serves:

- ``GET /json``: a small JSON object (the call every benchmark job makes);
- ``POST /json``: reads the body and answers a small JSON object with its length;
- ``GET /stats``: requests served, the busiest one-second window (the target's own observed
  ceiling) and the target's CPU seconds, so the harness can tell a saturated target apart.

On SIGTERM it prints its ceiling line (``CEILING served=... peak_rps=... cpu_s=...``) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
import time

import orjson
from aiohttp import web

from benchmarks.aio import run_loop

BODY = orjson.dumps({"ok": True, "id": 42, "items": ["a", "b", "c"], "message": "hello"})


class Counter:
    """Requests served, bucketed per 100 ms of wall clock to find the busiest moment.

    ``peak_rps`` is the busiest 100 ms window times ten: the target's own observed ceiling
    (a one-second window would hide a burst shorter than a second).
    """

    WINDOW = 0.1

    def __init__(self) -> None:
        self.served = 0
        self.peak = 0
        self._window = 0
        self._in_window = 0

    def hit(self) -> None:
        self.served += 1
        now = int(time.monotonic() / self.WINDOW)
        if now != self._window:
            self._window = now
            self._in_window = 0
        self._in_window += 1
        self.peak = max(self.peak, self._in_window)

    def snapshot(self) -> dict[str, float]:
        return {
            "served": self.served,
            "peak_rps": self.peak / self.WINDOW,
            "cpu_s": time.process_time(),
        }


COUNTER_KEY = web.AppKey("counter", Counter)


async def get_json(request: web.Request) -> web.Response:
    request.app[COUNTER_KEY].hit()
    return web.Response(body=BODY, content_type="application/json")


async def post_json(request: web.Request) -> web.Response:
    request.app[COUNTER_KEY].hit()
    data = await request.read()
    body = orjson.dumps({"ok": True, "received": len(data)})
    return web.Response(body=body, content_type="application/json")


async def stats(request: web.Request) -> web.Response:
    body = orjson.dumps(request.app[COUNTER_KEY].snapshot())
    return web.Response(body=body, content_type="application/json")


def make_app() -> web.Application:
    app = web.Application()
    app[COUNTER_KEY] = Counter()
    app.router.add_get("/json", get_json)
    app.router.add_post("/json", post_json)
    app.router.add_get("/stats", stats)
    return app


async def serve(port: int) -> None:
    app = make_app()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    site = web.SockSite(runner, sock, backlog=1024)
    await site.start()
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    snap = app[COUNTER_KEY].snapshot()
    served, peak, cpu = snap["served"], snap["peak_rps"], snap["cpu_s"]
    print(f"CEILING served={served} peak_rps={peak:.0f} cpu_s={cpu:.2f}", flush=True)
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: ephemeral)")
    args = parser.parse_args(argv)
    run_loop(serve(args.port))
    sys.exit(0)


if __name__ == "__main__":
    main()
