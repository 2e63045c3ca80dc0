"""JobQueue's performance harness: ``python -m benchmarks.run [--quick] [--runs N] [--out PATH]``.

One command, against a local HTTP target in its own process (``benchmarks.target``):

- W0: the ceilings, plain aiohttp and plain httpx.AsyncClient doing the same GETs, no queue;
- W1: single-call jobs over the REST API to ``jobqueue serve`` (embedded worker, SQLite),
  plus idle latency; W1_worker: the same with a separate ``jobqueue worker`` process;
- W2: one DAG job of 1 -> n-2 -> 1 tasks; W3: validation of a large DAG with interfaces;
- RSS_100k: the API's memory with 100,000 jobs queued (not in ``--quick``).

Each run starts fresh servers on fresh SQLite files in a temporary directory. The table shows
the median and min-max spread over the runs; the JSON goes to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import queued, report, workloads
from benchmarks.aio import run_loop
from benchmarks.procs import Proc, ProcessFailed, http_get, start_target, target_port
from benchmarks.servers import Commands, server_available, start_server, stop_server


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

    @classmethod
    def quick(cls, runs: int = 1) -> Config:
        return cls(
            jobs=200, idle_samples=10, dag_tasks=50, validate_tasks=500, queued_jobs=0,
            runs=runs, timeout=60.0,
        )  # fmt: skip


Run = dict[str, dict[str, Any]]


class Harness:
    """Runs every workload ``cfg.runs`` times against one target; collects figures and errors."""

    def __init__(self, cfg: Config, workdir: Path, target: Proc, commands: Commands) -> None:
        self.cfg = cfg
        self.commands = commands
        self.workdir = workdir
        self.target = target
        self.url = f"http://127.0.0.1:{target_port(target)}/json"
        self.errors: list[str] = []

    async def guarded(self, run: Run, name: str, work: Callable[[], Awaitable[Any]]) -> None:
        """Run one workload; an exception is recorded (and printed), never fatal to the rest."""
        try:
            figures = await work()
        except Exception as exc:
            message = f"{name}: {type(exc).__name__}: {exc}"
            self.errors.append(message)
            print(f"  ! {message}\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            return
        run.setdefault(name, {}).update(figures)
        print(f"  {name}: {_brief(figures)}", flush=True)

    async def one_run(self, index: int) -> Run:
        cfg, run = self.cfg, {}
        print(f"run {index + 1}/{cfg.runs}", flush=True)
        await self.guarded(
            run, "W0", lambda: workloads.w0_ceilings(self.url, cfg.jobs, cfg.concurrency)
        )
        await self.guarded(run, "W3", self._w3_in_process)
        if not server_available(self.commands):
            self.errors.append("server missing (api/main.py): W1, W1_worker, W2 not measured")
            return run
        for name, part in (("W1", self._embedded), ("W1_worker", self._separate_worker)):
            try:
                await part(run, index)
            except ProcessFailed as exc:
                self.errors.append(f"{name}: server failed: {exc}")
                print(f"  ! {name}: server failed: {exc}", file=sys.stderr, flush=True)
        return run

    async def _w3_in_process(self) -> dict[str, Any]:
        return await asyncio.to_thread(workloads.w3_in_process, self.url, self.cfg.validate_tasks)

    async def _embedded(self, run: Run, index: int) -> None:
        cfg = self.cfg
        with contextlib.ExitStack() as stack:
            server = await start_server(
                stack, self.workdir, f"run{index}-embedded", embedded=True, commands=self.commands
            )
            run.setdefault("W1", {})["startup_s"] = server.startup_s
            await self.guarded(
                run, "W1",
                lambda: workloads.w1_bulk(server, self.url, cfg.jobs, cfg.concurrency, cfg.timeout),
            )  # fmt: skip
            await self.guarded(
                run, "W1", lambda: workloads.idle_latency(server, self.url, cfg.idle_samples)
            )
            w0 = run.get("W0", {})
            if "aiohttp_rps" in w0:
                await self.guarded(
                    run, "W2",
                    lambda: workloads.w2_dag(server, self.url, cfg.dag_tasks, w0, cfg.timeout),
                )  # fmt: skip
            await self.guarded(
                run, "W3", lambda: workloads.w3_http(server, self.url, cfg.validate_tasks)
            )
            stop_server(server)

    async def _separate_worker(self, run: Run, index: int) -> None:
        cfg = self.cfg
        with contextlib.ExitStack() as stack:
            server = await start_server(
                stack,
                self.workdir,
                f"run{index}-worker",
                embedded=False,
                with_worker=True,
                commands=self.commands,
            )
            await self.guarded(
                run, "W1_worker",
                lambda: workloads.w1_bulk(server, self.url, cfg.jobs, cfg.concurrency, cfg.timeout),
            )  # fmt: skip
            await self.guarded(
                run, "W1_worker",
                lambda: workloads.idle_latency(server, self.url, cfg.idle_samples),
            )  # fmt: skip
            stop_server(server)

    async def rss_queued(self) -> Run:
        run: Run = {}
        if not self.cfg.queued_jobs or not server_available(self.commands):
            return run
        print(f"RSS with {self.cfg.queued_jobs:,} jobs queued", flush=True)
        with contextlib.ExitStack() as stack:
            server = await start_server(
                stack, self.workdir, "queued", embedded=False, commands=self.commands
            )
            await self.guarded(
                run, "RSS_100k",
                lambda: queued.rss_with_queued(
                    server, self.url, self.cfg.queued_jobs, self.cfg.concurrency
                ),
            )  # fmt: skip
            stop_server(server)
        return run

    def target_stats(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            import orjson

            status, body = http_get(self.url.replace("/json", "/stats"))
            if status == 200:
                return dict(orjson.loads(body))
        return {}


def _brief(figures: dict[str, Any]) -> str:
    shown = [
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in figures.items()
    ]
    return ", ".join(shown)


async def run_all(
    cfg: Config, workdir: Path, commands: Commands
) -> tuple[list[Run], Run, list[str], dict[str, Any]]:
    with contextlib.ExitStack() as stack:
        target = start_target(stack, workdir)
        harness = Harness(cfg, workdir, target, commands)
        print(f"target {harness.url} (pid {target.pid})", flush=True)
        runs = [await harness.one_run(i) for i in range(cfg.runs)]
        extra = await harness.rss_queued()
        stats = harness.target_stats()
        target.stop()
        ceiling = [line for line in target.log_tail().splitlines() if line.startswith("CEILING")]
        stats["ceiling_line"] = ceiling[-1] if ceiling else None
    return runs, extra, harness.errors, stats


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run (< 60 s)")
    parser.add_argument("--runs", type=int, default=None, help="runs (default 3, quick 1)")
    parser.add_argument("--out", default=None, help="JSON file or directory for the results")
    parser.add_argument("--jobs", type=int, default=None, help="override W0/W1 size")
    parser.add_argument("--serve-cmd", help="server command line instead of `jobqueue serve`")
    parser.add_argument("--worker-cmd", help="worker command line instead of `jobqueue worker`")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, db)")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> Config:
    cfg = Config.quick(args.runs or 1) if args.quick else Config(runs=args.runs or 3)
    if args.jobs:
        cfg = Config(**{**asdict(cfg), "jobs": args.jobs})
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = build_config(args)
    started = report.utc_now()
    workdir = Path(tempfile.mkdtemp(prefix="jobqueue-bench-"))
    try:
        runs, extra, errors, target = run_loop(
            run_all(cfg, workdir, Commands(args.serve_cmd, args.worker_cmd))
        )
    except ProcessFailed as exc:
        print(f"harness failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    report.add_ratios(runs)
    summary = report.summarize([*runs, extra] if extra else runs)
    targets = report.check_targets(summary)
    print("\n" + report.render_table(summary, targets))
    path = report.result_path(args.out, started)
    report.write_json(
        path,
        {
            "started_at": started.isoformat().replace("+00:00", "Z"),
            "finished_at": report.utc_now().isoformat().replace("+00:00", "Z"),
            "mode": "quick" if args.quick else "full",
            "config": asdict(cfg),
            "machine": report.machine_facts(),
            "target": target,
            "runs": runs,
            "rss_queued": extra,
            "summary": summary,
            "targets": targets,
            "errors": errors,
        },
    )
    print(f"\nresults: {path}" + (f"\nerrors: {len(errors)}" if errors else ""))
    if args.keep:
        print(f"work dir kept: {workdir}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
