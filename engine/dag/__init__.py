"""A job as a graph of tasks, and the pure rules of its progress. No I/O, no store.

``graph`` builds and checks the task graph of a job document and draws a stored job in Mermaid;
``order`` orders tasks given their upstream lists (topological order, sinks); ``scheduler``
decides which pending tasks become ready or skipped and how a job ends; ``retry`` is the retry
policy of one task.
"""

from engine.dag.graph import GraphResult, NameHints, build_graph, to_mermaid
from engine.dag.order import sinks, topological_order
from engine.dag.retry import RetryPolicy, policy_from_fields
from engine.dag.scheduler import SKIP_UPSTREAM, SKIP_WHEN, TaskState, advance, job_outcome

__all__ = [
    "SKIP_UPSTREAM",
    "SKIP_WHEN",
    "GraphResult",
    "NameHints",
    "RetryPolicy",
    "TaskState",
    "advance",
    "build_graph",
    "job_outcome",
    "policy_from_fields",
    "sinks",
    "to_mermaid",
    "topological_order",
]
