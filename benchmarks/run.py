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
import shutil
import sys
import tempfile
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.aio import run_loop
from benchmarks.harness import WORKLOADS, Config, Outcome, run_all
from benchmarks.procs import ProcessFailed
from benchmarks.servers import Commands


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run (< 60 s)")
    parser.add_argument("--runs", type=int, default=None, help="runs (default 3, quick 1)")
    parser.add_argument("--out", default=None, help="JSON file or directory for the results")
    parser.add_argument("--jobs", type=int, default=None, help="override W0/W1 size")
    parser.add_argument("--queued", type=int, default=None, help="override RSS_100k size (0: skip)")
    parser.add_argument("--serve-cmd", help="server command line instead of `jobqueue serve`")
    parser.add_argument("--worker-cmd", help="worker command line instead of `jobqueue worker`")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the server during the first W1"
    )
    parser.add_argument(
        "--only", default=None, help=f"comma list of workloads among {','.join(WORKLOADS)}"
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also run W1 through saq, huey and pgqueuer (pip install -e '.[bench]')",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, db)")
    parser.add_argument(
        "--broker",
        metavar="URL",
        help="instead of the workloads above: signals between processes on PostgreSQL over "
        "this broker (redis://... or amqp://...; 'none': PostgreSQL NOTIFY), idle latency and "
        "W1 with 1, 2 and 4 worker processes (benchmarks/brokers.py)",
    )
    parser.add_argument("--pg-dsn", default=None, help="PostgreSQL admin DSN for --broker")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> Config:
    cfg = Config.quick(args.runs or 1) if args.quick else Config(runs=args.runs or 3)
    only = frozenset(args.only.split(",")) if args.only else None
    unknown = (only or frozenset()) - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"unknown workloads: {', '.join(sorted(unknown))}")
    overrides = {"jobs": args.jobs, "queued_jobs": args.queued, "only": only, "peers": args.peers}
    return replace(cfg, **{key: value for key, value in overrides.items() if value is not None})


def _document(
    args: argparse.Namespace, cfg: Config, started: datetime, out: Outcome
) -> dict[str, Any]:
    report.add_ratios(out.runs)
    report.add_peer_ratios(out.runs)
    summary = report.summarize([*out.runs, out.queued] if out.queued else out.runs)
    return {
        "started_at": report.iso(started),
        "finished_at": report.iso(report.utc_now()),
        "mode": "quick" if args.quick else "full",
        "config": {**asdict(cfg), "only": sorted(cfg.only)},
        "machine": report.machine_facts(),
        "target": out.target,
        "runs": out.runs,
        "rss_queued": out.queued,
        "summary": summary,
        "targets": report.check_targets(summary),
        "profile": out.profile,
        "errors": out.errors,
        "skipped": out.skipped,
    }


def _broker_main(args: argparse.Namespace) -> int:
    from benchmarks import brokers

    started = report.utc_now()
    path = report.result_path(args.out, started)
    workdir = Path(tempfile.mkdtemp(prefix="jobqueue-bench-brokers-"))
    broker = None if args.broker == "none" else args.broker
    options: dict[str, Any] = {"admin_dsn": args.pg_dsn or brokers.PG_ADMIN_DSN}
    if args.jobs:
        options["jobs"] = args.jobs
    if args.quick:
        options |= {"jobs": args.jobs or 300, "idle_samples": 10, "worker_counts": (1, 2)}
    try:
        document = run_loop(brokers.measure(broker, workdir, **options))
    except ProcessFailed as exc:
        print(f"harness failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    document |= {"started_at": report.iso(started), "machine": report.machine_facts()}
    print("\n" + brokers.render(document))
    report.write_json(path, document)
    print(f"\nresults: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.broker:
        return _broker_main(args)
    cfg = build_config(args)
    started = report.utc_now()
    path = report.result_path(args.out, started)
    workdir = Path(tempfile.mkdtemp(prefix="jobqueue-bench-"))
    profile = workdir / "w1-server.pyspy.txt" if args.profile else None  # kept with --keep
    commands = Commands(args.serve_cmd, args.worker_cmd)
    try:
        outcome = run_loop(run_all(cfg, workdir, commands, profile))
    except ProcessFailed as exc:
        print(f"harness failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    document = _document(args, cfg, started, outcome)
    print("\n" + report.render_table(document["summary"], document["targets"]))
    report.write_json(path, document)
    print(f"\nresults: {path}")
    if outcome.skipped:
        print(f"skipped ({len(outcome.skipped)}):\n  " + "\n  ".join(outcome.skipped))
    if outcome.errors:
        print(f"errors ({len(outcome.errors)}):\n  " + "\n  ".join(outcome.errors))
    if args.keep:
        print(f"work dir kept: {workdir}")
    return 1 if outcome.errors else 0


if __name__ == "__main__":
    sys.exit(main())
