"""Orders over a job's tasks given only their names and upstream lists: plain Python, no graph
library, so validation, the scheduler and the API's views apply the very same rules.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence


def topological_order(names: Sequence[str], upstream: Mapping[str, Iterable[str]]) -> list[str]:
    """``names`` (distinct) in an order where every name follows its upstream names; of the names
    ready at the same time, the one earlier in ``names`` comes first.

    Upstream names that are not in ``names`` are ignored. A name on a cycle, or downstream of
    one, never becomes ready and is left out.
    """
    position = {name: i for i, name in enumerate(names)}
    waiting = [0] * len(names)
    children: list[list[int]] = [[] for _ in names]
    for i, name in enumerate(names):
        for up in upstream.get(name, ()):
            j = position.get(up)
            if j is not None:
                waiting[i] += 1
                children[j].append(i)
    ready = [i for i, count in enumerate(waiting) if count == 0]  # ascending: already a heap
    order: list[str] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(names[i])
        for child in children[i]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    return order


def sinks(names: Iterable[str], upstream: Mapping[str, Iterable[str]]) -> list[str]:
    """The names no other name lists as upstream (nothing depends on them), in their order."""
    names = list(names)
    feeding = {up for name in names for up in upstream.get(name, ())}
    return [name for name in names if name not in feeding]
