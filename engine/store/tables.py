"""The tables, in SQLAlchemy Core with portable types (one Alembic chain serves both backends).

Times are UNIX epoch seconds as double precision: the same arithmetic and index order on SQLite
and PostgreSQL, no timezone conversions on the hot path; the API renders them as ISO 8601 UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

#: an auto-increment id: INTEGER PRIMARY KEY on SQLite (rowid alias), BIGINT identity elsewhere
AutoId = BigInteger().with_variant(Integer(), "sqlite")

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(256), nullable=True),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("owner", String(128), nullable=False, default=""),
    Column("params", JSON, nullable=True),
    Column("single_call", Boolean, nullable=False, default=False),
    Column("n_tasks", Integer, nullable=False),
    Column("scheduled_at", Float, nullable=True),
    Column("ttl_seconds", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("expires_at", Float, nullable=True),
    Column("idempotency_key", String(256), nullable=True),
    Column("request_hash", String(64), nullable=True),
    Column("warnings", JSON, nullable=True),
    Column("tags", JSON, nullable=True),
    #: the workflow definition (name, version) the job was started from, and the context its
    #: starter gave (a schedule's fire time, ...)
    Column("workflow_name", String(128), nullable=True),
    Column("workflow_version", Integer, nullable=True),
    Column("workflow_context", JSON, nullable=True),
    #: a child job of a sub-workflow task: that task, and how deep it nests
    Column("parent_job_id", String(40), nullable=True),
    Column("parent_task", String(128), nullable=True),
    Column("depth", Integer, nullable=True),
    #: extra template roots fixed at creation: ``{"schedule": {...}}`` for a schedule's job
    Column("context", JSON, nullable=True),
    #: the job's completion webhook (``on_complete``), else null
    Column("on_complete", JSON, nullable=True),
    Index("ix_jobs_created", "created_at", "id"),
    Index("ix_jobs_workflow", "workflow_name", "created_at"),
    Index("ix_jobs_parent", "parent_job_id"),
    Index("ix_jobs_status_created", "status", "created_at"),
    Index("ix_jobs_expires", "expires_at"),
    Index("ix_jobs_idempotency", "owner", "idempotency_key", unique=True),
)

job_tags = Table(
    "job_tags",
    metadata,
    Column("job_id", String(40), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(128), primary_key=True),
    Index("ix_job_tags_tag", "tag", "job_id"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("job_id", String(40), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("position", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("spec", JSON, nullable=False),
    Column("upstream", JSON, nullable=False),
    Column("trigger_rule", String(16), nullable=False, default="all_success"),
    Column("templated", Boolean, nullable=False, default=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("tries", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False, default=1),
    Column("rescues", Integer, nullable=False, default=0),
    Column("ttl_seconds", Float, nullable=True),
    Column("next_attempt_at", Float, nullable=True),
    Column("ready_at", Float, nullable=True),
    Column("expires_at", Float, nullable=True),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("skip_reason", String(16), nullable=True),
    Column("response_status", Integer, nullable=True),
    Column("response_headers", JSON, nullable=True),
    Column("response_body", JSON, nullable=True),
    Column("response_truncated", Boolean, nullable=True),
    Column("error", JSON, nullable=True),
    Column("duration_ms", Float, nullable=True),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    #: an instance of a ``for_each`` task: its parent task and item index (instances are not
    #: nodes of the job's DAG); on the parent, the instance counters
    Column("parent_id", BigInteger, nullable=True),
    Column("item_index", Integer, nullable=True),
    Column("items_total", Integer, nullable=True),
    Column("items_succeeded", Integer, nullable=True),
    Column("items_failed", Integer, nullable=True),
    #: a sub-workflow task: the child job it waits for
    Column("child_job_id", String(40), nullable=True),
    UniqueConstraint("job_id", "name", name="uq_tasks_job_name"),
    Index("ix_tasks_parent", "parent_id", "item_index"),
    Index("ix_tasks_running_lease", "status", "lease_expires_at"),
    Index("ix_tasks_expiry", "status", "expires_at"),
    #: a job's active tasks (is the job over?) without reading its other rows
    Index("ix_tasks_job_status", "job_id", "status"),
)

#: the claim order by status: SQLite's planner never picks the partial index above for a
#: ``status = ?`` parameter, and sorted every queued task on each claim without this one
Index(
    "ix_tasks_queue",
    tasks.c.status,
    tasks.c.priority.desc(),
    tasks.c.next_attempt_at,
    tasks.c.id,
)

#: the claim query's order (priority desc, due time, age) over queued tasks only
Index(
    "ix_tasks_claim",
    tasks.c.priority.desc(),
    tasks.c.next_attempt_at,
    tasks.c.id,
    sqlite_where=tasks.c.status == "queued",
    postgresql_where=tasks.c.status == "queued",
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("task_id", BigInteger, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("job_id", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("worker", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("duration_ms", Float, nullable=True),
    Column("response_status", Integer, nullable=True),
    Column("error", JSON, nullable=True),
    UniqueConstraint("task_id", "attempt", name="uq_attempts_task_attempt"),
    Index("ix_attempts_job", "job_id"),
)

interface_masters = Table(
    "interface_masters",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("input_schema", JSON, nullable=True),
    Column("output_schema", JSON, nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

#: which jobs reference which masters (by name), so deleting a master in use can be refused
job_interfaces = Table(
    "job_interfaces",
    metadata,
    Column("job_id", String(40), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("interface", String(128), primary_key=True),
    Index("ix_job_interfaces_name", "interface"),
)

#: named, versioned workflow definitions; a version is never changed once stored
workflows = Table(
    "workflows",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("description", Text, nullable=True),
    Column("params_schema", JSON, nullable=True),
    Column("document", JSON, nullable=False),
    #: sha256 of the canonical JSON of everything above: an identical PUT keeps the version
    Column("digest", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)

#: which definitions a definition's latest version starts as sub-workflows (refuses deleting
#: a definition in use, and definitions that call each other in a circle)
workflow_uses = Table(
    "workflow_uses",
    metadata,
    Column("workflow", String(128), primary_key=True),
    Column("uses", String(128), primary_key=True),
    Index("ix_workflow_uses_uses", "uses"),
)

#: cron schedules; ``next_fire_at`` is null while disabled (the scheduler's one indexed query)
schedules = Table(
    "schedules",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("cron", String(256), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("job", JSON, nullable=True),
    Column("workflow", JSON, nullable=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("overlap", String(16), nullable=False),
    Column("catch_up", String(16), nullable=False),
    Column("owner", String(128), nullable=False, default=""),
    Column("next_fire_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_schedules_next_fire", "next_fire_at"),
)

#: one row per handled tick: the unique (schedule_id, fire_time) makes a tick fire once across
#: every process; it is inserted in the transaction that creates the tick's job
schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column(
        "schedule_id",
        String(40),
        ForeignKey("schedules.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("fire_time", Float, nullable=False),
    #: ``fired`` (job_id set), ``skipped`` (overlap) or ``failed`` (the job was refused)
    Column("outcome", String(16), nullable=False),
    Column("job_id", String(40), nullable=True),
    Column("detail", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("schedule_id", "fire_time", name="uq_schedule_fires_tick"),
)

#: API keys: only the SHA-256 of a key is stored; a name has at most one key that is not revoked
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("admin", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)

Index(
    "ix_api_keys_active_name",
    api_keys.c.name,
    unique=True,
    sqlite_where=api_keys.c.revoked_at.is_(None),
    postgresql_where=api_keys.c.revoked_at.is_(None),
)

#: who changed what, when and from where; never a request body or a header value
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(256), nullable=True),
    Column("address", String(64), nullable=True),
    Index("ix_audit_at", "at"),
    Index("ix_audit_actor", "actor", "id"),
    Index("ix_audit_target", "target", "id"),
)

#: every status change of a job and its tasks, written in the transaction that made it; the id
#: orders them (the event id of the live streams) and the rows go when the job goes
job_events = Table(
    "job_events",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("job_id", String(40), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("at", Float, nullable=False),
    Column("payload", JSON, nullable=False),
    Index("ix_job_events_job", "job_id", "id"),
)

#: callback tokens (only their sha256 is stored): one per attempt of a callback task
callbacks = Table(
    "callbacks",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("task_id", BigInteger, nullable=False),
    Column("job_id", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    #: the attempt fails with ``callback_timeout`` after this time
    Column("due_at", Float, nullable=False),
    #: set when the token was used, timed out or its attempt ended otherwise
    Column("closed_at", Float, nullable=True),
    Index("ix_callbacks_task", "task_id", "attempt"),
    Index("ix_callbacks_job", "job_id"),
)

#: the reaper's scan: open tokens by due time
Index(
    "ix_callbacks_due",
    callbacks.c.due_at,
    sqlite_where=callbacks.c.closed_at.is_(None),
    postgresql_where=callbacks.c.closed_at.is_(None),
)

#: one completion webhook to deliver (enqueued in the transaction that ends its job)
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("job_id", String(40), nullable=False),
    Column("event", String(32), nullable=False),
    Column("job_status", String(16), nullable=False),
    Column("url", Text, nullable=False),
    Column("headers", JSON, nullable=True),
    #: pending | delivered | failed (every attempt used)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    #: due time; while a worker sends it, the end of that worker's lease
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_owner", String(128), nullable=True),
    #: the body without its per-try fields, fixed at the first try
    Column("payload", JSON, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Index("ix_webhook_deliveries_job", "job_id"),
)

Index(
    "ix_webhook_deliveries_due",
    webhook_deliveries.c.next_attempt_at,
    sqlite_where=webhook_deliveries.c.status == "pending",
    postgresql_where=webhook_deliveries.c.status == "pending",
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("delivery_id", String(40), nullable=False),
    Column("job_id", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", Float, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", JSON, nullable=True),
    Column("duration_ms", Float, nullable=True),
    Column("next_attempt_at", Float, nullable=True),
    Index("ix_webhook_attempts_job", "job_id", "delivery_id", "attempt"),
)
