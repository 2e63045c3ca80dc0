"""The engine's configuration: a plain frozen record. ``api/settings.py`` reads the environment
(JOBQUEUE_*) and builds it; the engine never reads the environment itself."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_DB_URL = "sqlite+aiosqlite:///./data/jobqueue.db"


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    db_url: str = DEFAULT_DB_URL
    #: concurrent HTTP calls per worker process
    concurrency: int = 4
    #: seconds between polls when no wake-up arrives
    poll_interval: float = 0.3
    #: seconds per attempt when a task sets no ``timeout_sec``
    default_timeout: float = 30.0
    result_max_bytes: int = 1_048_576
    lease_seconds: float = 30.0
    reaper_interval: float = 30.0
    max_rescues: int = 3
    shutdown_grace: float = 20.0
    sqlite_synchronous: str = "FULL"
    allowed_hosts: tuple[str, ...] = ()
    allow_private_networks: bool = False
    #: "aiohttp" (fastest measured) or "httpx"
    http_client: str = "aiohttp"
    #: how often a worker checks whether its running tasks were canceled by another process
    cancel_check_interval: float = 0.5
    #: how often an idle worker checks (with one ``stat``) whether another process committed
    #: to its SQLite file; 0 turns the check off and leaves only the poll interval
    change_check_interval: float = 0.005
    write_batch_max: int = 512
    max_template_output_bytes: int = 1_048_576
    secret_header_names: frozenset[str] = field(default_factory=frozenset)
    #: most instances one ``for_each`` task may expand to
    max_map_items: int = 10_000
    #: how deep sub-workflows may nest (a top-level job is depth 0)
    max_workflow_depth: int = 5
    #: every worker that takes any job also runs the scheduler loop (cron schedules)
    scheduler: bool = True
