"""``--profile``: sample the server with py-spy while W1 runs, and say what dominated.

py-spy (``pip install py-spy``) records collapsed stacks (``--format raw``) of the API process;
:func:`summarize` turns them into the functions with the most samples on top of the stack (self)
and the project's functions with the most samples anywhere on the stack (inclusive).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OURS = ("engine/", "api/", "schemas/")
PROJECT = str(Path(__file__).resolve().parent.parent)


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def recording(pid: int, out: Path | None, rate: int = 200) -> Iterator[None]:
    """Record ``pid`` (and its subprocesses) into ``out`` while the block runs; no-op if
    ``out`` is None or py-spy is missing."""
    exe = py_spy()
    if out is None or exe is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
            "--subprocesses", "--gil", "--nonblocking", "--output", str(out)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (short path, no line)``. py-spy already gives
    paths relative to ``sys.path`` (``sqlalchemy/engine/base.py``, ``engine/runtime/worker.py``)."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    if path.startswith(PROJECT + "/"):
        path = path[len(PROJECT) + 1 :]
    for marker in ("site-packages/", "lib/python3.11/", "lib/python3.12/", "lib/python3.13/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def _is_ours(name: str) -> bool:
    return any(f"({root}" in name for root in OURS)


def summarize(raw: Path, top: int = 25) -> dict[str, Any]:
    """Top functions by self samples and by inclusive samples (all, and the project's)."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
            if _is_ours(name):
                ours[name] += count

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / max(total, 1), 1)] for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "self_pct": share(self_counts),
        "inclusive_pct": share(inclusive),
        "ours_inclusive_pct": share(ours),
    }


def render(summary: dict[str, Any], top: int = 12, during: str = "W1") -> str:
    lines = [f"py-spy: {summary['samples']} samples (GIL held) of the server during {during}"]
    lines.append("  most samples on top of the stack (self %):")
    lines += [f"    {pct:5.1f}  {name}" for name, pct in summary["self_pct"][:top]]
    lines.append("  project functions, anywhere on the stack (inclusive %):")
    ours = [(n, p) for n, p in summary["ours_inclusive_pct"] if "(api/cli.py)" not in n]
    lines += [f"    {pct:5.1f}  {name}" for name, pct in ours[:top]]
    return "\n".join(lines)
