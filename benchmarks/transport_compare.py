"""Which HTTP transport should the executor use? Measure, don't assume.

``python -m benchmarks.transport_compare [--requests N] [--rounds R] [--concurrency 1 32]
[--loop uvloop]``

Starts the test target (``tests/integration/target_server.py``) in its own process on
127.0.0.1, then sends ``GET /json`` through each variant at each concurrency, in interleaved
rounds, and prints per cell the median and best requests/s, the ratio of medians to the
production executor, and the client's CPU microseconds per request (which, unlike req/s, barely
moves when other processes share the machine):

* ``executor aiohttp``: ``create_executor(kind="aiohttp")``, the production default;
* ``executor httpx``: ``create_executor(kind="httpx")`` over httpx's own pooled transport;
* ``executor httpx+aiohttp``: the httpx executor over ``httpx_aiohttp.AiohttpTransport``;
* ``raw aiohttp`` / ``raw httpx``: a bare ``aiohttp.ClientSession`` and a bare
  ``httpx.AsyncClient`` with no executor on top: the ceilings, and the executor's overhead.

Every variant gets a pool of ``concurrency`` connections, keep-alive, and a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from engine.http import Executor, HttpRequest, TargetPolicy, create_executor

ROOT = Path(__file__).resolve().parent.parent
LOCAL = TargetPolicy(allow_private=True)
MAX_BODY = 1 << 20


class Sender(Protocol):
    async def get(self, url: str) -> int: ...

    async def aclose(self) -> None: ...


class ExecutorSender:
    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    async def get(self, url: str) -> int:
        request = HttpRequest(method="GET", url=url, headers={}, params={}, body=None, timeout=30)
        return (await self.executor.send(request)).status_code

    async def aclose(self) -> None:
        await self.executor.aclose()


class RawAiohttp:
    def __init__(self, concurrency: int) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))

    async def get(self, url: str) -> int:
        async with self.session.get(url) as response:
            await response.read()
            return response.status

    async def aclose(self) -> None:
        await self.session.close()


class RawHttpx:
    def __init__(self, concurrency: int) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.client = httpx.AsyncClient(limits=limits, trust_env=False)

    async def get(self, url: str) -> int:
        return (await self.client.get(url)).status_code

    async def aclose(self) -> None:
        await self.client.aclose()


def _aiohttp_transport(concurrency: int) -> AiohttpTransport:
    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=concurrency)
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    return AiohttpTransport(client=session)


VARIANTS: dict[str, Callable[[int], Sender]] = {
    "executor aiohttp": lambda c: ExecutorSender(
        create_executor(max_connections=c, max_body_bytes=MAX_BODY, target_policy=LOCAL)
    ),
    "executor httpx": lambda c: ExecutorSender(
        create_executor(
            kind="httpx", max_connections=c, max_body_bytes=MAX_BODY, target_policy=LOCAL
        )
    ),
    "executor httpx+aiohttp": lambda c: ExecutorSender(
        create_executor(
            kind="httpx",
            max_connections=c,
            max_body_bytes=MAX_BODY,
            target_policy=LOCAL,
            transport=_aiohttp_transport(c),
        )
    ),
    "raw aiohttp": RawAiohttp,
    "raw httpx": RawHttpx,
}


async def _drive(
    send: Callable[[], Awaitable[int]], concurrency: int, requests: int
) -> tuple[float, float]:
    """(wall, client CPU) seconds for ``requests`` calls by ``concurrency`` coroutines.

    A non-200 answer is an error. CPU time is this process's: unlike wall time it barely moves
    when other processes share the machine, so it shows each client's cost per request.
    """
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status = await send()
            if status != 200:
                raise RuntimeError(f"target answered {status}")

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, time.process_time() - cpu


async def measure(variant: str, url: str, concurrency: int, requests: int) -> Sample:
    """One variant at one concurrency, after a warm-up that fills the pool."""
    sender = VARIANTS[variant](concurrency)
    try:
        await _drive(lambda: sender.get(url), concurrency, max(concurrency * 4, 50))
        wall, cpu = await _drive(lambda: sender.get(url), concurrency, requests)
    finally:
        await sender.aclose()
    return Sample(rps=requests / wall, cpu_us=cpu / requests * 1e6)


@contextlib.contextmanager
def target_process() -> Iterator[str]:
    """The target server in its own process; yields its base URL."""
    command = [sys.executable, "-m", "tests.integration.target_server", "--no-record"]
    process = subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("READY "):
            raise RuntimeError(f"target server did not start: {line!r}")
        yield line.removeprefix("READY ")
    finally:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()  # the server stops when its stdin closes
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


@dataclass(frozen=True)
class Sample:
    #: requests per second (wall clock)
    rps: float
    #: client CPU microseconds per request
    cpu_us: float


Samples = dict[tuple[str, int], list[Sample]]


async def compare(url: str, concurrencies: list[int], requests: int, rounds: int) -> Samples:
    """Every variant at every concurrency, ``rounds`` times, variants interleaved."""
    samples: Samples = {}
    for round_no in range(1, rounds + 1):
        for variant in VARIANTS:
            for concurrency in concurrencies:
                sample = await measure(variant, url, concurrency, requests)
                samples.setdefault((variant, concurrency), []).append(sample)
                print(
                    f"  round {round_no}: {variant:<24} c={concurrency:<3} "
                    f"{sample.rps:8,.0f} req/s {sample.cpu_us:6,.0f} CPU us/req",
                    file=sys.stderr,
                    flush=True,
                )
    return samples


def report(samples: Samples, concurrencies: list[int]) -> str:
    """Per cell: median and best req/s, ratio of medians to executor aiohttp's, CPU us/req."""
    head = "".join(
        f"{f'c={c} median':>14}{'best':>8}{'ratio':>7}{'cpu us':>8}" for c in concurrencies
    )
    lines = [f"{'variant':<25}{head}"]
    for variant in VARIANTS:
        cells = ""
        for c in concurrencies:
            rps = [s.rps for s in samples[variant, c]]
            base = statistics.median(s.rps for s in samples["executor aiohttp", c])
            cpu = statistics.median(s.cpu_us for s in samples[variant, c])
            median = statistics.median(rps)
            cells += f"{median:>14,.0f}{max(rps):>8,.0f}{median / base:>7.2f}{cpu:>8,.0f}"
        lines.append(f"{variant:<25}{cells}")
    return "\n".join(lines)


def _run(coro: Coroutine[Any, Any, Samples], loop: str) -> Samples:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is shown")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    with target_process() as base_url:
        url = base_url + "/json"
        print(
            f"GET {url}: {args.requests} requests per cell, median of {args.rounds} rounds, "
            f"loop={args.loop}, target in its own process",
            flush=True,
        )
        samples = _run(compare(url, args.concurrency, args.requests, args.rounds), args.loop)
    print(report(samples, args.concurrency))


if __name__ == "__main__":
    main()
