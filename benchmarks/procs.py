"""Processes the harness starts (target, server, worker) and what it reads about them.

Every process is started in its own session (process group) and registered on an
:class:`contextlib.ExitStack`, which terminates the group (SIGTERM, wait, SIGKILL on timeout)
however the harness leaves: normal end, exception or Ctrl-C. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

STOP_TIMEOUT = 15.0
_STRIPPED_ENV = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ProcessFailed(RuntimeError):
    """A started process died or never became ready; the message carries its log tail."""


@dataclass
class Proc:
    """One started process: its Popen handle, name and log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    stopped: bool = field(default=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the process group, wait up to ``timeout``, then SIGKILL it."""
        if self.stopped:
            return
        self.stopped = True
        _signal_group(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)
        # Children that outlived the leader of the group.
        _signal_group(self.popen.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The harness's environment without proxies and JOBQUEUE_* settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("JOBQUEUE_") and key.lower() not in _STRIPPED_ENV
    }
    env.update(extra or {})
    return env


def spawn(
    stack: contextlib.ExitStack,
    name: str,
    argv: list[str],
    log_dir: Path,
    env: Mapping[str, str] | None = None,
) -> Proc:
    """Start ``argv`` in its own process group, logging to ``log_dir/<name>.log``."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else clean_env(),
            start_new_session=True,
        )
    proc = Proc(name=name, popen=popen, log_path=log_path)
    stack.callback(proc.stop)
    return proc


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_target(stack: contextlib.ExitStack, log_dir: Path, timeout: float = 20.0) -> Proc:
    """Start ``benchmarks.target`` and return it once it printed its port."""
    argv = [sys.executable, "-m", "benchmarks.target"]
    proc = spawn(stack, "target", argv, log_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in proc.log_tail().splitlines():
            if line.startswith("PORT "):
                return proc
        if not proc.alive():
            break
        time.sleep(0.02)
    raise ProcessFailed(f"target did not start:\n{proc.log_tail()}")


def target_port(proc: Proc) -> int:
    for line in proc.log_tail().splitlines():
        if line.startswith("PORT "):
            return int(line.split()[1])
    raise ProcessFailed("target printed no port")


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """A plain blocking GET without proxies (for readiness checks, never for measuring)."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


async def wait_ready(proc: Proc, url: str, timeout: float = 60.0) -> float:
    """Poll ``url`` until it answers 200; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not proc.alive():
            raise ProcessFailed(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.log_tail()}")
        with contextlib.suppress(OSError):
            status, _ = await asyncio.to_thread(http_get, url, 1.0)
            if status == 200:
                return time.monotonic() - start
        await asyncio.sleep(0.05)
    raise ProcessFailed(f"{proc.name} not ready at {url} after {timeout:.0f}s:\n{proc.log_tail()}")


# --- /proc readings -------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children = _children_map()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of ``pid`` and its descendants, summed, in MB."""
    pids = tree_pids(pid)
    rss = sum(_status_kb(p, "VmRSS") for p in pids)
    hwm = sum(_status_kb(p, "VmHWM") for p in pids)
    return {"rss_mb": rss / 1024, "hwm_mb": hwm / 1024, "processes": len(pids)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


class RssSampler:
    """Samples the summed VmRSS of some process trees while a workload runs; keeps the peak."""

    def __init__(self, pids: list[int], interval: float = 0.1) -> None:
        self.pids = pids
        self.interval = interval
        self.peak_mb = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            total = sum(memory_mb(pid)["rss_mb"] for pid in self.pids)
            self.peak_mb = max(self.peak_mb, total)
            await asyncio.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rss-sampler")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
