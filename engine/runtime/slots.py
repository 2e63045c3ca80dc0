"""A worker's ``JOBQUEUE_CONCURRENCY`` slots: who holds them, and who was promised one.

A slot is held while a task's HTTP call is in flight (an outcome waiting for its commit does not
hold one, so the next claim can ride the same commit). Direct dispatch promises slots to a write
that will claim tasks inside its own transaction (a submission, an outcome that makes tasks
ready); the promise is kept or released when that write returns. This is the only place that
counts slots.
"""

from __future__ import annotations


class Slots:
    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._calls: set[int] = set()
        self._reserved = 0

    def free(self) -> int:
        return self.capacity - len(self._calls) - self._reserved

    @property
    def busy(self) -> bool:
        """Some call is in flight."""
        return bool(self._calls)

    @property
    def promised(self) -> int:
        return self._reserved

    def reserve(self, wanted: int) -> int:
        """Promise up to ``wanted`` free slots; returns how many were promised."""
        granted = max(0, min(wanted, self.free()))
        self._reserved += granted
        return granted

    def release(self, reserved: int) -> None:
        """A promise ended: its tasks (if any) were taken with :meth:`take`."""
        self._reserved -= reserved

    def take(self, task_id: int) -> None:
        self._calls.add(task_id)

    def give_back(self, task_id: int) -> bool:
        """The call of ``task_id`` ended; true if it held a slot."""
        if task_id in self._calls:
            self._calls.discard(task_id)
            return True
        return False
