"""Starting ``jobqueue serve`` (and ``jobqueue worker``) on a fresh SQLite file for a workload."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.procs import Proc, clean_env, free_port, spawn, wait_ready

CONCURRENCY = 32


@dataclass
class Server:
    """A running API process, and its separate worker when there is one."""

    base: str
    api: Proc
    worker: Proc | None
    db_path: Path
    startup_s: float

    def pids(self) -> list[int]:
        return [p.pid for p in (self.api, self.worker) if p is not None]


def _jobqueue_script() -> Path | None:
    script = Path(sys.executable).parent / "jobqueue"
    return script if script.exists() else None


@dataclass(frozen=True)
class Commands:
    """Overrides for the server and worker command lines (``--serve-cmd``, ``--worker-cmd``);
    ``{port}`` in the serve command is replaced by the port the harness picked."""

    serve: str | None = None
    worker: str | None = None


def serve_argv(port: int, commands: Commands) -> list[str]:
    """``jobqueue serve``, or uvicorn on ``api.main:app`` when the script is not installed."""
    if commands.serve:
        return shlex.split(commands.serve.replace("{port}", str(port)))
    script = _jobqueue_script()
    if script is not None:
        return [str(script), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return [
        sys.executable, "-m", "uvicorn", "api.main:app",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip


def worker_argv(commands: Commands) -> list[str]:
    if commands.worker:
        return shlex.split(commands.worker)
    script = _jobqueue_script()
    if script is not None:
        return [str(script), "worker"]
    return [sys.executable, "-c", "from api.cli import main; main()", "worker"]


def server_env(db_path: Path, embedded: bool, concurrency: int = CONCURRENCY) -> dict[str, str]:
    extra = {
        "JOBQUEUE_DB_URL": f"sqlite+aiosqlite:///{db_path}",
        "JOBQUEUE_CONCURRENCY": str(concurrency),
        "JOBQUEUE_ALLOW_PRIVATE_NETWORKS": "true",
        "JOBQUEUE_EMBEDDED_WORKER": "true" if embedded else "false",
        "JOBQUEUE_SHUTDOWN_GRACE": "2",
    }
    # measure encryption at rest: BENCH_SECRET_KEY=<Fernet key> python -m benchmarks.run ...
    if os.environ.get("BENCH_SECRET_KEY"):
        extra["JOBQUEUE_SECRET_KEY"] = os.environ["BENCH_SECRET_KEY"]
    return clean_env(extra)


def server_available(commands: Commands) -> bool:
    """True once the server code exists (the harness then runs W1/W2 and W3 over HTTP)."""
    if commands.serve:
        return True
    root = Path(__file__).resolve().parent.parent
    return (root / "api" / "main.py").exists() or _jobqueue_script() is not None


async def start_server(
    stack: contextlib.ExitStack,
    workdir: Path,
    name: str,
    *,
    embedded: bool,
    with_worker: bool = False,
    commands: Commands = Commands(),
) -> Server:
    """Start the API (and a worker process) on ``workdir/<name>.db``; wait for /healthz."""
    db_path = workdir / f"{name}.db"
    env = server_env(db_path, embedded)
    port = free_port()
    api = spawn(stack, f"{name}-serve", serve_argv(port, commands), workdir, env)
    base = f"http://127.0.0.1:{port}"
    startup = await wait_ready(api, f"{base}/healthz")
    worker = None
    if with_worker:
        worker = spawn(stack, f"{name}-worker", worker_argv(commands), workdir, env)
    return Server(base=base, api=api, worker=worker, db_path=db_path, startup_s=startup)


def stop_server(server: Server) -> None:
    """Stop the worker first (it drains), then the API."""
    if server.worker is not None:
        server.worker.stop()
    server.api.stop()
