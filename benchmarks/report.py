"""Summaries across runs (median and min-max spread), ratios to the ceiling, the
targets, the printed table, machine facts and the JSON file under ``benchmarks/results/``."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks.aio import loop_name

PACKAGES = (
    "aiohttp", "httpx", "sqlalchemy", "aiosqlite", "fastapi", "uvicorn", "pydantic", "orjson",
    "uvloop", "httptools",
)  # fmt: skip

#: the figure of each workload whose ratio to the same run's faster ceiling is reported
RATIO_FIGURES = {
    "W1": ("e2e_jobs_per_s", "submit_rps"),
    "W1_worker": ("e2e_jobs_per_s", "submit_rps"),
}

#: the performance targets: (workload, figure, comparison, bound)
TARGETS = (
    ("W1", "e2e_jobs_per_s", ">=", 1000.0),
    ("W1", "e2e_jobs_per_s/ceiling", ">=", 0.25),
    ("W1", "idle_latency_polled_ms", "<", 5.0),
    ("W2", "overhead_ms_per_task", "<", 2.0),
    ("W3", "total_s", "<", 1.0),
    ("RSS_100k", "rss_mb", "<", 250.0),
)


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarize(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per workload and numeric figure: median, min, max over the runs that produced it."""
    collected: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        for workload, figures in run.items():
            for key, value in figures.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    collected.setdefault(workload, {}).setdefault(key, []).append(float(value))
    return {
        workload: {key: spread(values) for key, values in figures.items()}
        for workload, figures in collected.items()
    }


def add_ratios(runs: list[dict[str, dict[str, Any]]]) -> None:
    """Write ``<figure>/ceiling`` (to the same run's faster W0 ceiling) into each run."""
    for run in runs:
        ceiling = run.get("W0", {}).get("ceiling_rps")
        if not ceiling:
            continue
        for workload, keys in RATIO_FIGURES.items():
            figures = run.get(workload)
            for key in keys:
                if figures and isinstance(figures.get(key), int | float):
                    figures[f"{key}/ceiling"] = figures[key] / ceiling


#: (JobQueue workload, its rate) compared with (peer, its rate): higher is better for JobQueue
PEER_RATIOS = (
    ("W1", "e2e_wall_jobs_per_s", "saq"),
    ("W1", "e2e_wall_jobs_per_s", "huey"),
    ("W1_worker", "e2e_wall_jobs_per_s", "saq"),
    ("W1_pg_1w", "e2e_wall_jobs_per_s", "pgqueuer"),
    ("W1_pg_2w", "e2e_wall_jobs_per_s", "pgqueuer"),
    ("W1_pg_4w", "e2e_wall_jobs_per_s", "pgqueuer"),
)


def add_peer_ratios(runs: list[dict[str, dict[str, Any]]]) -> None:
    """Write ``vs_peers``: JobQueue's figures over each peer's of the same run (throughput:
    > 1 is faster; ``idle_latency ... / peer``: < 1 is faster), and polled W1 over W1."""
    for run in runs:
        out: dict[str, float] = {}
        for workload, key, peer in PEER_RATIOS:
            ours = run.get(workload, {}).get(key)
            theirs = run.get(f"peer_{peer}", {}).get("e2e_jobs_per_s")
            if ours and theirs:
                out[f"{workload}/{peer} jobs_per_s"] = ours / theirs
        ours_idle = run.get("W1", {}).get("idle_latency_polled_ms")
        for peer in ("saq", "huey", "pgqueuer"):
            theirs = run.get(f"peer_{peer}", {}).get("idle_latency_polled_ms")
            if ours_idle and theirs:
                out[f"W1 idle_latency/{peer}"] = ours_idle / theirs
        polled = run.get("W1_polled", {}).get("e2e_jobs_per_s")
        listed = run.get("W1", {}).get("e2e_wall_jobs_per_s")
        if polled and listed:
            out["W1_polled/W1 jobs_per_s"] = polled / listed
        if out:
            run["vs_peers"] = out


def check_targets(summary: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, Any]]:
    out = []
    for workload, key, op, bound in TARGETS:
        stats = summary.get(workload, {}).get(key)
        if stats is None:
            out.append({"target": f"{workload}.{key} {op} {bound}", "median": None, "met": None})
            continue
        value = stats["median"]
        met = value >= bound if op == ">=" else value < bound
        out.append({"target": f"{workload}.{key} {op} {bound}", "median": value, "met": met})
    return out


def _fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def render_table(
    summary: dict[str, dict[str, dict[str, float]]], targets: list[dict[str, Any]]
) -> str:
    lines = [f"{'workload':<10} {'figure':<34} {'median':>12} {'spread (min-max)':>24}"]
    lines.append("-" * len(lines[0]))
    for workload in sorted(summary):
        for key, stats in summary[workload].items():
            span = f"{_fmt(stats['min'])} - {_fmt(stats['max'])}"
            lines.append(f"{workload:<10} {key:<34} {_fmt(stats['median']):>12} {span:>24}")
    lines.append("")
    lines.append("targets (median over runs):")
    for target in targets:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        value = "-" if target["median"] is None else _fmt(target["median"])
        lines.append(f"  {target['target']:<44} {value:>12}  {verdict}")
    return "\n".join(lines)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_facts() -> dict[str, Any]:
    return {
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "event_loop": loop_name(),
        "packages": {name: _version(name) for name in PACKAGES},
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain")),
    }


def result_path(out: str | None, started: datetime) -> Path:
    """``--out`` may name a .json file or a directory; default ``benchmarks/results/``."""
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    if out and out.endswith(".json"):
        return Path(out)
    directory = Path(out) if out else Path(__file__).resolve().parent / "results"
    return directory / f"{stamp}.json"


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    tmp.replace(path)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
