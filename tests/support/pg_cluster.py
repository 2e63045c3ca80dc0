"""A private PostgreSQL cluster for tests that restart or stop the server under a running engine.

``initdb`` into a fresh temporary directory, ``pg_ctl`` to start, restart and stop it; it listens
on 127.0.0.1 at a free port (unix socket in the same directory), with trust authentication, so
no other test and no other server is affected::

    cluster = PrivateCluster.create()      # raises ClusterUnavailable when it cannot be built
    try:
        cluster.start()
        engine = await Engine.open(make_config(cluster.url))
        ...
        cluster.restart()                  # pg_ctl restart -m fast
    finally:
        cluster.destroy()                  # stops the server, removes the directory

PostgreSQL refuses to run as root: as root, every command runs as the ``postgres`` OS user
through ``runuser -u postgres --`` and the directory is given to that user. Not as root, the
commands run as the current user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.processes import free_port

_BIN_ROOT = Path("/usr/lib/postgresql")
_OS_USER = "postgres"


class ClusterUnavailable(RuntimeError):
    """What a private cluster needs is missing (its reason is the message)."""


def _version(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.name)) or (0,)


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl, else the
    directory of ``initdb`` on PATH."""
    candidates = sorted(_BIN_ROOT.glob("*/bin"), key=lambda p: _version(p.parent), reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    raise ClusterUnavailable(f"no initdb/pg_ctl in {_BIN_ROOT}/*/bin or on PATH")


def _run_as() -> list[str]:
    """The command prefix that runs PostgreSQL's tools as a user it accepts."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ClusterUnavailable("running as root, and runuser (to become postgres) is missing")
    try:
        pwd.getpwnam(_OS_USER)
    except KeyError:
        raise ClusterUnavailable(f"running as root, and there is no {_OS_USER!r} OS user") from None
    return [runuser, "-u", _OS_USER, "--"]


class PrivateCluster:
    def __init__(self, bindir: Path, prefix: list[str], base: Path, port: int) -> None:
        self.bindir = bindir
        self.prefix = prefix
        self.base = base
        self.port = port
        self.data = base / "data"
        self.log = base / "postgres.log"
        self.started = False

    @classmethod
    def create(cls) -> PrivateCluster:
        """``initdb`` a new cluster in a new temporary directory (not started yet)."""
        bindir = find_bindir()
        prefix = _run_as()
        base = Path(tempfile.mkdtemp(prefix="jobqueue-pg-"))
        if prefix:
            shutil.chown(base, _OS_USER, _OS_USER)
        cluster = cls(bindir, prefix, base, free_port())
        try:
            cluster._tool(
                "initdb",
                "-D",
                str(cluster.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                timeout=120,
            )
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    @property
    def url(self) -> str:
        """The engine URL of the cluster's ``postgres`` database."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _tool(self, name: str, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(
            [*self.prefix, str(self.bindir / name), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{name} {' '.join(args)} exited with {done.returncode}:\n"
                f"{done.stdout}{done.stderr}\n{self.server_log()}"
            )
        return done.stdout

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base}"
        self._tool(
            "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
            "-o", options,
        )  # fmt: skip
        self.started = True

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, the server comes back with the
        same options; returns once it accepts connections again."""
        self._tool(
            "pg_ctl", "restart", "-D", str(self.data), "-l", str(self.log), "-m", "fast",
            "-w", "-t", "60",
        )  # fmt: skip

    def stop(self) -> None:
        if not self.started:
            return
        try:
            self._tool("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60")
        except (RuntimeError, subprocess.TimeoutExpired):
            self._tool("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        self.started = False

    def destroy(self) -> None:
        """Stop the server (if it runs) and remove the directory; safe to call twice."""
        try:
            self.stop()
        finally:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(self.base)
