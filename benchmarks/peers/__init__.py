"""Other job queues running the same W1 as JobQueue, in the same run, on the same machine.

Each peer is a small adapter written for the harness: a worker process of the peer's own kind
that does one aiohttp (or httpx, for a thread-based peer) GET of the target per job, and the
harness enqueueing ``n`` jobs through the peer's library at the same concurrency. A peer whose
package (the ``bench`` extra) or service (Redis, PostgreSQL) is missing is skipped with the
reason, never fatal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from benchmarks.peers.common import PeerContext, PeerUnavailable

Figures = dict[str, float]


@dataclass(frozen=True)
class Peer:
    name: str
    backend: str  #: the store it uses: sqlite, redis or postgres
    run: Callable[[PeerContext], Awaitable[Figures]]


def all_peers() -> list[Peer]:
    from benchmarks.peers import huey_peer, pgqueuer_peer, saq_peer

    return [
        Peer("saq", "redis", saq_peer.w1),
        Peer("huey", "sqlite", huey_peer.w1),
        Peer("pgqueuer", "postgres", pgqueuer_peer.w1),
    ]


__all__ = ["Peer", "PeerContext", "PeerUnavailable", "all_peers"]
