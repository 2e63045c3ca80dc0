"""The performance harness runs end to end in ``--quick`` mode, so it cannot rot.

No assertion on speed here (issue 6): only that every workload ran and produced figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: workload -> figures that must be present and positive in the summary
EXPECTED = {
    "W0": ("aiohttp_rps", "httpx_rps", "ceiling_rps", "rtt_ms", "aiohttp_gen_cpu_s"),
    "W1": (
        "submit_rps",
        "e2e_jobs_per_s",
        "latency_p50_ms",
        "latency_p99_ms",
        "idle_latency_polled_ms",
        "idle_latency_server_ms",
        "api_hwm_mb",
        "e2e_jobs_per_s/ceiling",
        "gen_cpu_s",
    ),
    "W1_worker": ("submit_rps", "e2e_jobs_per_s", "latency_p50_ms", "idle_latency_polled_ms"),
    "W1_polled": ("e2e_jobs_per_s", "polls_per_job", "server_cpu_ms_per_job", "finished"),
    "W2": ("e2e_server_s", "e2e_wall_s", "http_estimate_s", "server_cpu_ms_per_task"),
    "W3": ("tasks", "validate_s", "total_s", "http_validate_s"),
}

pytestmark = pytest.mark.slow


def test_quick_run_writes_every_workload(tmp_path: Path) -> None:
    if not (ROOT / "api" / "main.py").exists():
        pytest.skip("the server (api/main.py) is not there yet")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    written = list(tmp_path.glob("*.json"))
    assert len(written) == 1, proc.stdout[-2000:]
    result = json.loads(written[0].read_text())

    assert result["errors"] == []
    assert result["machine"]["nproc"] >= 1
    for workload, figures in EXPECTED.items():
        summary = result["summary"].get(workload)
        assert summary is not None, f"{workload} missing"
        for figure in figures:
            assert summary[figure]["median"] > 0, f"{workload}.{figure}"
    assert result["summary"]["W1"]["not_succeeded"]["median"] == 0
    assert result["summary"]["W2"]["status_ok"]["median"] == 1
    assert "steal_pct" in result["summary"]["W1"]


def test_quick_run_with_peers_measures_or_skips_each_peer(tmp_path: Path) -> None:
    """Each peer either wrote its W1 figures (and a ratio to JobQueue's) or was skipped with
    the reason (package or service missing); neither is an error."""
    argv = ["--quick", "--peers", "--only", "W1", "--out", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert result["errors"] == []
    for peer in ("saq", "huey", "pgqueuer"):
        figures = result["summary"].get(f"peer_{peer}")
        if figures is None:
            assert any(line.startswith(f"peer_{peer}:") for line in result["skipped"]), peer
            continue
        assert figures["e2e_jobs_per_s"]["median"] > 0
        assert figures["idle_latency_polled_ms"]["median"] > 0
    ratios = result["summary"].get("vs_peers", {})
    if "peer_saq" in result["summary"]:
        assert ratios["W1/saq jobs_per_s"]["median"] > 0
