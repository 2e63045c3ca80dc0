"""The machine's steal time from ``/proc/stat``: the share of CPU time the hypervisor gave to
other guests. On a shared VM it moves every figure, so the harness records it beside each one."""

from __future__ import annotations

from pathlib import Path


def _cpu_line() -> tuple[int, int] | None:
    """(steal, total) jiffies summed over all CPUs, or ``None`` where /proc/stat is missing."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    values = [int(v) for v in first[1:]]
    steal = values[7] if len(values) > 7 else 0
    # guest and guest_nice (fields 9, 10) are already counted in user and nice
    return steal, sum(values[:8])


class StealMeter:
    """``with StealMeter() as s: ...; s.pct``: steal time over the block, in % of all CPU time."""

    pct: float | None = None

    def __enter__(self) -> StealMeter:
        self._start = _cpu_line()
        return self

    def __exit__(self, *exc: object) -> None:
        end = _cpu_line()
        if self._start is None or end is None:
            return
        total = end[1] - self._start[1]
        self.pct = 100.0 * (end[0] - self._start[0]) / total if total > 0 else 0.0
