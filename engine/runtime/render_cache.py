"""What a worker remembers for rendering: job params and context, and the outputs of succeeded
tasks.

Both never change once written (a job's params are fixed at submission; a succeeded task keeps
its output, ``POST /retry`` re-runs only the others), so a worker that has just recorded an
upstream's success can render the downstream task without reading them back from the database:
in a chain that read is a good part of each hop.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

Output = dict[str, Any]


class RenderCache:
    def __init__(self, max_entries: int = 4096) -> None:
        self._max = max_entries
        self._jobs: OrderedDict[str, tuple[dict[str, Any], str | None, dict[str, Any] | None]] = (
            OrderedDict()
        )
        self._outputs: OrderedDict[tuple[str, str], Output] = OrderedDict()

    def remember_job(
        self,
        job_id: str,
        params: dict[str, Any],
        name: str | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self._put(self._jobs, job_id, (params, name, extra))

    def remember_output(self, job_id: str, task: str, output: Output) -> None:
        self._put(self._outputs, (job_id, task), output)

    def context(self, job_id: str, upstream: Sequence[str]) -> dict[str, Any] | None:
        """The render inputs when everything is known here, else ``None`` (read the store)."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        outputs = {}
        for name in upstream:
            found = self._outputs.get((job_id, name))
            if found is None:
                return None
            outputs[name] = found
        return {
            "params": job[0],
            "job_id": job_id,
            "job_name": job[1],
            "upstream": outputs,
            "extra": job[2],
        }

    def _put(self, store: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        store[key] = value
        store.move_to_end(key)
        while len(store) > self._max:
            store.popitem(last=False)
