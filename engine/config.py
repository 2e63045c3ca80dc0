"""The engine's configuration: a plain frozen record. ``api/settings.py`` reads the environment
(JOBQUEUE_*) and builds it; the engine never reads the environment itself."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_DB_URL = "sqlite+aiosqlite:///./data/jobqueue.db"


@dataclass(frozen=True, kw_only=True)
class JobLimits:
    """Limits on what one job document may ask for, checked when it is created."""

    max_tasks_per_job: int = 1000
    max_headers_per_task: int = 64
    #: bytes of one header (name + value)
    max_header_bytes: int = 8192
    max_url_length: int = 8192


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
    #: more header names (lower case) whose values are masked, encrypted and not redirected
    secret_header_names: frozenset[str] = field(default_factory=frozenset)
    #: most instances one ``for_each`` task may expand to
    max_map_items: int = 10_000
    #: how deep sub-workflows may nest (a top-level job is depth 0)
    max_workflow_depth: int = 5
    #: every worker that takes any job also runs the scheduler loop (cron schedules)
    scheduler: bool = True
    #: seconds one template render may take
    max_template_render_seconds: float = 1.0
    #: ``name:key`` (or ``key``) entries of the API keys from the environment
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    #: the same, for keys that are admins
    admin_keys: tuple[str, ...] = field(default=(), repr=False)
    #: how old the in-memory copy of the database's keys may get before it is read again
    key_refresh_seconds: float = 2.0
    #: creation-time limits of a job document (each answers 422 naming itself)
    limits: JobLimits = field(default_factory=lambda: JobLimits())
    #: Fernet keys (url-safe base64): the first encrypts stored secrets, all decrypt
    secret_keys: tuple[str, ...] = ()
    #: per-host caps of each worker process (``engine.http.host_limits`` parses it)
    host_limits: str = ""
    #: ``redis://...`` or ``amqp://...``: signals between processes go over this broker
    #: (instead of PostgreSQL ``NOTIFY`` / the SQLite file watch); None keeps them local
    broker_url: str | None = None
    #: the start of every name the broker backend creates (channels, exchange, queues)
    broker_prefix: str = "jobqueue"
    #: base of the callback URLs handed to callback tasks (``{public_url}/api/v1/callbacks/...``)
    public_url: str = "http://127.0.0.1:8000"
    #: HMAC-SHA256 key of completion webhook signatures; empty: unsigned
    webhook_secret: str = ""
    #: seconds one webhook try may take
    webhook_timeout: float = 10.0
    #: the first webhook retry's wait; each further one doubles it
    webhook_backoff_seconds: float = 180.0
    webhook_max_attempts: int = 10
    #: webhook tries in flight at once per worker (their own connection pool)
    webhook_concurrency: int = 8
    #: seconds between looks for due webhook deliveries
    webhook_poll_interval: float = 1.0
