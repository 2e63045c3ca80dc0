"""Runs the workloads in order, each run on fresh servers; records figures and errors.

Per run: W0 (ceilings) and W3 in-process; then one ``jobqueue serve`` with the embedded worker
for W1 (+ idle latency), W2 and W3 over HTTP; then ``serve`` without worker plus a separate
``jobqueue worker`` for W1_worker. After all runs, once: RSS_100k.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from benchmarks import profiling, queued, workloads
from benchmarks.peers import PeerContext, PeerUnavailable, all_peers
from benchmarks.peers.pgqueuer_peer import pg_database
from benchmarks.procs import Proc, ProcessFailed, http_get, start_target, target_port
from benchmarks.servers import Commands, Server, server_available, start_server, stop_server
from benchmarks.steal import StealMeter

WORKLOADS = (
    "W0", "W1", "W1_worker", "W1_polled", "W1_pg", "W2", "W2_large", "W3", "RSS_100k",
)  # fmt: skip
#: what runs without ``--only``: W2_large (a 10,000-task wide job and chains) takes minutes
DEFAULT_WORKLOADS = frozenset(WORKLOADS) - {"W2_large"}
#: worker processes of the PostgreSQL W1 runs
PG_WORKERS = (1, 2, 4)
Run = dict[str, dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class Config:
    jobs: int = 5000
    concurrency: int = 32
    idle_samples: int = 50
    dag_tasks: int = 1000
    validate_tasks: int = 10_000
    queued_jobs: int = 100_000
    runs: int = 3
    timeout: float = 600.0
    #: the workloads to run (W0 always runs: every ratio needs it)
    only: frozenset[str] = DEFAULT_WORKLOADS
    #: run the same W1 through the other job queues of ``benchmarks.peers``
    peers: bool = False

    @classmethod
    def quick(cls, runs: int = 1) -> Config:
        return cls(
            jobs=200, idle_samples=10, dag_tasks=50, validate_tasks=500, queued_jobs=0,
            runs=runs, timeout=60.0,
        )  # fmt: skip


@dataclass
class Outcome:
    """Everything one invocation measured."""

    runs: list[Run]
    queued: Run
    errors: list[str]
    target: dict[str, Any]
    profile: dict[str, Any]
    skipped: list[str] = field(default_factory=list)


def _brief(figures: dict[str, Any]) -> str:
    shown = [
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in figures.items()
    ]
    return ", ".join(shown)


class Harness:
    """Runs every workload ``cfg.runs`` times against one target."""

    def __init__(
        self, cfg: Config, workdir: Path, target: Proc, commands: Commands, profile: Path | None
    ) -> None:
        self.cfg = cfg
        self.workdir = workdir
        self.commands = commands
        self.profile_to = profile
        self.profile: dict[str, Any] = {}
        self.url = f"http://127.0.0.1:{target_port(target)}/json"
        self.errors: list[str] = []
        self.skipped: list[str] = []

    def wants(self, *names: str) -> bool:
        return any(name in self.cfg.only for name in names)

    async def guarded(self, run: Run, name: str, work: Callable[[], Awaitable[Any]]) -> None:
        """Run one workload; an exception is recorded (and printed), never fatal to the rest.

        ``steal_pct`` is the machine's steal time over the workload (``/proc/stat``)."""
        try:
            with StealMeter() as steal:
                figures = await work()
        except PeerUnavailable as exc:
            self.skipped.append(f"{name}: {exc}")
            print(f"  - {name} skipped: {exc}", flush=True)
            return
        except Exception as exc:
            message = f"{name}: {type(exc).__name__}: {exc}"
            self.errors.append(message)
            print(f"  ! {message}\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            return
        if steal.pct is not None:
            figures["steal_pct"] = steal.pct
        run.setdefault(name, {}).update(figures)
        print(f"  {name}: {_brief(figures)}", flush=True)

    async def one_run(self, index: int) -> Run:
        """One run; ``host`` records the load average, as other processes skew every figure."""
        run: Run = {"host": {"load_1m_start": os.getloadavg()[0]}}
        print(f"run {index + 1}/{self.cfg.runs}", flush=True)
        await self._all_parts(run, index)
        run["host"]["load_1m_end"] = os.getloadavg()[0]
        return run

    async def _all_parts(self, run: Run, index: int) -> None:
        cfg = self.cfg
        await self.guarded(
            run, "W0", lambda: workloads.w0_ceilings(self.url, cfg.jobs, cfg.concurrency)
        )
        if self.wants("W3"):
            await self.guarded(run, "W3", self._w3_in_process)
        if not server_available(self.commands):
            self.errors.append("server missing (api/main.py): W1, W1_worker, W2 not measured")
            return
        await self._server_part("W1", self._embedded(run, index))
        await self._server_part("W1_worker", self._separate_worker(run, index))
        await self._server_part("W1_polled", self._polled(run, index))
        if self.wants("W1_pg"):
            await self._server_part("W1_pg", self._postgres(run, index))
        if self.cfg.peers:
            await self._peers(run)

    async def _polled(self, run: Run, index: int) -> None:
        if not self.wants("W1_polled"):
            return
        cfg = self.cfg
        with contextlib.ExitStack() as stack:
            server = await start_server(
                stack, self.workdir, f"run{index}-polled", embedded=True, commands=self.commands
            )
            await self.guarded(
                run, "W1_polled",
                lambda: workloads.w1_polled(
                    server, self.url, cfg.jobs, cfg.concurrency, cfg.timeout
                ),
            )  # fmt: skip
            stop_server(server)

    async def _postgres(self, run: Run, index: int) -> None:
        """W1 on PostgreSQL: ``serve`` without worker plus 1, 2, 4 ``jobqueue worker``s."""
        cfg = self.cfg
        for count in PG_WORKERS:
            name = f"W1_pg_{count}w"
            try:
                url = await pg_database(f"jobqueue_bench_w1_{count}")
            except PeerUnavailable as exc:
                self.skipped.append(f"W1_pg: {exc}")
                print(f"  - W1_pg skipped: {exc}", flush=True)
                return
            with contextlib.ExitStack() as stack:
                server = await start_server(
                    stack, self.workdir, f"run{index}-pg{count}", embedded=False,
                    with_worker=True, commands=self.commands, db_url=url, workers=count,
                )  # fmt: skip
                await self.guarded(run, name, partial(
                    workloads.w1_bulk, server, self.url, cfg.jobs, cfg.concurrency, cfg.timeout
                ))  # fmt: skip
                stop_server(server)

    async def _peers(self, run: Run) -> None:
        for peer in all_peers():
            with contextlib.ExitStack() as stack:
                ctx = PeerContext(
                    url=self.url, jobs=self.cfg.jobs, concurrency=self.cfg.concurrency,
                    idle_samples=self.cfg.idle_samples, workdir=self.workdir, stack=stack,
                    timeout=self.cfg.timeout,
                )  # fmt: skip
                await self.guarded(run, f"peer_{peer.name}", partial(peer.run, ctx))

    async def _server_part(self, name: str, part: Awaitable[None]) -> None:
        """A server that does not start costs its workloads, never the results of the rest."""
        try:
            await part
        except ProcessFailed as exc:
            self.errors.append(f"{name}: server failed: {exc}")
            print(f"  ! {name}: server failed: {exc}", file=sys.stderr, flush=True)

    async def _w3_in_process(self) -> dict[str, Any]:
        return await asyncio.to_thread(workloads.w3_in_process, self.url, self.cfg.validate_tasks)

    async def _embedded(self, run: Run, index: int) -> None:
        if not self.wants("W1", "W2", "W3"):
            return
        with contextlib.ExitStack() as stack:
            name = f"run{index}-embedded"
            server = await start_server(
                stack, self.workdir, name, embedded=True, commands=self.commands
            )
            if self.wants("W1"):
                run.setdefault("W1", {})["startup_s"] = server.startup_s
                await self._w1(run, "W1", server, self.profile_to if index == 0 else None)
            if self.wants("W2") and "aiohttp_rps" in run.get("W0", {}):
                await self.guarded(run, "W2", lambda: self._w2(server, run["W0"]))
            if self.wants("W2_large") and "aiohttp_rps" in run.get("W0", {}):
                await self.guarded(run, "W2_large", lambda: self._w2_large(server, run["W0"]))
            if self.wants("W3"):
                await self.guarded(
                    run, "W3", lambda: workloads.w3_http(server, self.url, self.cfg.validate_tasks)
                )
            stop_server(server)

    async def _w1(self, run: Run, name: str, server: Server, profile_to: Path | None) -> None:
        cfg = self.cfg
        await self.guarded(
            run, name,
            lambda: workloads.w1_bulk(
                server, self.url, cfg.jobs, cfg.concurrency, cfg.timeout, profile_to
            ),
        )  # fmt: skip
        if profile_to is not None and profile_to.exists():
            self.profile = {**profiling.summarize(profile_to), "raw_file": str(profile_to)}
            print(profiling.render(self.profile), flush=True)
        await self.guarded(
            run, name, lambda: workloads.idle_latency(server, self.url, cfg.idle_samples)
        )

    async def _w2(self, server: Server, w0: dict[str, Any]) -> dict[str, Any]:
        return await workloads.w2_dag(server, self.url, self.cfg.dag_tasks, w0, self.cfg.timeout)

    async def _w2_large(self, server: Server, w0: dict[str, Any]) -> dict[str, Any]:
        """Per-task overhead as the job grows: wide and chain jobs of 1,000 and 10,000 tasks."""
        out: dict[str, Any] = {}
        for shape in ("wide", "chain"):
            for n in (1000, 10_000):
                figures = await workloads.w2_shape(server, self.url, shape, n, w0, 1800.0)
                out[f"{shape}_{n}_overhead_ms_per_task"] = figures["overhead_ms_per_task"]
                out[f"{shape}_{n}_e2e_server_s"] = figures["e2e_server_s"]
                print(f"    W2 {shape} {n}: {_brief(figures)}", flush=True)
        return out

    async def _separate_worker(self, run: Run, index: int) -> None:
        if not self.wants("W1_worker"):
            return
        with contextlib.ExitStack() as stack:
            server = await start_server(
                stack, self.workdir, f"run{index}-worker",
                embedded=False, with_worker=True, commands=self.commands,
            )  # fmt: skip
            await self._w1(run, "W1_worker", server, None)
            stop_server(server)

    async def rss_queued(self) -> Run:
        run: Run = {}
        n = self.cfg.queued_jobs
        if not n or not self.wants("RSS_100k") or not server_available(self.commands):
            return run
        print(f"RSS with {n:,} jobs queued", flush=True)
        await self._server_part("RSS_100k", self._queued(run, n))
        return run

    async def _queued(self, run: Run, n: int) -> None:
        with contextlib.ExitStack() as stack:
            server = await start_server(
                stack, self.workdir, "queued", embedded=False, commands=self.commands
            )
            await self.guarded(
                run, "RSS_100k",
                lambda: queued.rss_with_queued(server, self.url, n, self.cfg.concurrency),
            )  # fmt: skip
            stop_server(server)

    def target_stats(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            status, body = http_get(self.url.replace("/json", "/stats"))
            if status == 200:
                return dict(orjson.loads(body))
        return {}


async def run_all(cfg: Config, workdir: Path, commands: Commands, profile: Path | None) -> Outcome:
    """Start the target, run everything, stop the target (which prints its ceiling line)."""
    with contextlib.ExitStack() as stack:
        target = start_target(stack, workdir)
        harness = Harness(cfg, workdir, target, commands, profile)
        print(f"target {harness.url} (pid {target.pid})", flush=True)
        runs = [await harness.one_run(i) for i in range(cfg.runs)]
        queued_run = await harness.rss_queued()
        stats = harness.target_stats()
        target.stop()
        ceiling = [line for line in target.log_tail().splitlines() if line.startswith("CEILING")]
        stats["ceiling_line"] = ceiling[-1] if ceiling else None
    return Outcome(runs, queued_run, harness.errors, stats, harness.profile, harness.skipped)
