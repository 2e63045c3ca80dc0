"""``jobqueue demo``: start the local demo API in its own process, run a workflow against it
(on a private database, as ``jobqueue run`` does)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

from api.cli_local import load_settings, run_workflow


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the demo API exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the demo API did not answer {url} within {timeout:.0f} s")


def run_demo(workflow: Path, port: int, console: Console) -> int:
    root = Path.cwd()
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.demo_api", "--port", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches only this process, which cancels the job first
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(f"{base}/healthz", proc)
        console.print(f"demo API on {base}; running {workflow}")
        settings = load_settings(allow_private_networks=True)
        import asyncio

        return asyncio.run(
            run_workflow(workflow, {"base_url": base}, settings, as_json=False, console=console)
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
