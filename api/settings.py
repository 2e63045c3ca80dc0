"""Settings, read from the environment (JOBQUEUE_*) in this one module."""

from __future__ import annotations

from typing import Annotated, Literal

from cryptography.fernet import Fernet
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine import (
    DEFAULT_DB_URL,
    EngineConfig,
    JobLimits,
    check_broker_url,
    parse_host_limits,
    parse_key_entries,
)
from schemas.jobs import MAX_TASKS_PER_JOB


def _split(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


#: settings whose values are never printed, not even in an error about them
SECRET_SETTINGS = frozenset({"api_keys", "admin_keys", "api_key", "secret_key"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="JOBQUEUE_", extra="ignore", hide_input_in_errors=True
    )

    db_url: str = DEFAULT_DB_URL
    concurrency: int = Field(default=4, ge=1, le=4096)
    poll_interval: float = Field(default=0.3, gt=0)
    default_timeout: float = Field(default=30.0, gt=0)
    result_max_bytes: int = Field(default=1_048_576, ge=0)
    embedded_worker: bool = True
    #: every worker process (embedded or ``jobqueue worker``) also fires cron schedules
    scheduler: bool = True
    lease_seconds: float = Field(default=30.0, gt=0)
    reaper_interval: float = Field(default=30.0, gt=0)
    max_rescues: int = Field(default=3, ge=0)
    max_map_items: int = Field(default=10_000, ge=0)
    max_workflow_depth: int = Field(default=5, ge=0)
    shutdown_grace: float = Field(default=20.0, ge=0)
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    allow_private_networks: bool = False
    http_client: Literal["aiohttp", "httpx"] = "aiohttp"
    #: largest request body the API reads (413 beyond)
    max_request_bytes: int = Field(default=10 * 1_048_576, gt=0)
    #: seconds a client has to send a whole request body (408 beyond)
    body_read_timeout: float = Field(default=30.0, gt=0)
    #: ``name:key`` (or bare ``key``) entries; with any key configured, the API needs one
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(default=(), repr=False)
    #: the same for admin keys (every job, the audit log, keys, InterfaceMaster writes)
    admin_keys: Annotated[tuple[str, ...], NoDecode] = Field(default=(), repr=False)
    #: CLI only: the key ``jobqueue submit`` and ``jobqueue jobs ...`` send to a server
    api_key: str | None = Field(default=None, repr=False)
    #: seconds before a key created or revoked by another process takes effect here
    key_refresh_seconds: float = Field(default=2.0, gt=0, le=3600)
    #: browser origins allowed to call the API (CORS); empty: no CORS headers at all
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    max_tasks_per_job: int = Field(default=10_000, ge=1, le=MAX_TASKS_PER_JOB)
    max_headers_per_task: int = Field(default=64, ge=0, le=10_000)
    #: bytes of one task header, name and value together
    max_header_bytes: int = Field(default=8192, ge=1, le=1_048_576)
    max_url_length: int = Field(default=8192, ge=16, le=8192)
    #: bytes one template may render to
    template_max_output_bytes: int = Field(default=1_048_576, ge=1024)
    #: seconds one template render may take
    template_max_render_seconds: float = Field(default=1.0, gt=0, le=60)
    #: more header names whose values are masked and encrypted (comma list)
    secret_headers: Annotated[tuple[str, ...], NoDecode] = ()
    #: Fernet keys, comma-separated: the first encrypts, all decrypt
    secret_key: Annotated[tuple[str, ...], NoDecode] = Field(default=(), repr=False)
    #: per-host caps, e.g. ``api.example.com=4:10/s,*.internal.example=2``
    host_limits: str = ""
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["text", "json"] = "text"
    #: ``redis://host:port/db`` or ``amqp://user:pass@host:port/vhost``: signals between
    #: processes go over this broker; unset keeps them in the database
    broker_url: str | None = None
    #: the start of every channel, exchange and queue name on the broker
    broker_prefix: str = "jobqueue"
    #: base of callback URLs; unset: ``http://<host>:<port>`` of ``jobqueue serve``, else
    #: uvicorn's default address
    public_url: str | None = Field(default=None, pattern=r"^https?://")
    #: HMAC-SHA256 key of completion webhook signatures (empty: unsigned)
    webhook_secret: str = ""
    #: the first webhook retry's wait in seconds; each further one doubles it
    webhook_backoff: float = Field(default=180.0, gt=0)
    #: seconds one webhook try may take
    webhook_timeout: float = Field(default=10.0, gt=0)

    @field_validator("allowed_hosts", "cors_origins", "secret_headers", "secret_key", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        return _split(value)

    @field_validator("api_keys", "admin_keys", mode="before")
    @classmethod
    def _keys(cls, value: object) -> object:
        return _split(value)

    @field_validator("api_keys", "admin_keys")
    @classmethod
    def _key_entries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_key_entries(value, admin=False)
        return value

    @model_validator(mode="after")
    def _check_keys(self) -> Settings:
        users = parse_key_entries(self.api_keys, admin=False)
        admins = parse_key_entries(self.admin_keys, admin=True)
        if users.keys() & admins.keys():
            raise ValueError("the same key is in JOBQUEUE_API_KEYS and JOBQUEUE_ADMIN_KEYS")
        names = [p.name for p in [*users.values(), *admins.values()]]
        if len(set(names)) != len(names):
            raise ValueError("two API keys of the environment have the same name")
        return self

    @field_validator("secret_key")
    @classmethod
    def _fernet_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for position, key in enumerate(value, start=1):
            try:
                Fernet(key.encode())
            except (ValueError, TypeError):
                raise ValueError(
                    f"key {position} of {len(value)} is not a Fernet key (32 url-safe "
                    "base64-encoded bytes; make one with: python -c 'from cryptography.fernet "
                    "import Fernet; print(Fernet.generate_key().decode())')"
                ) from None
        return value

    @field_validator("host_limits")
    @classmethod
    def _host_limits(cls, value: str) -> str:
        try:
            parse_host_limits(value)
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("JOBQUEUE_HOST_LIMITS: ")) from None
        return value

    @field_validator("sqlite_synchronous", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("broker_url", mode="after")
    @classmethod
    def _broker(cls, value: str | None) -> str | None:
        check_broker_url(value or None)  # unknown scheme, client not installed: say which extra
        return value or None

    @field_validator("broker_prefix", mode="after")
    @classmethod
    def _prefix(cls, value: str) -> str:
        check_broker_url(None, value)
        return value

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            db_url=self.db_url,
            concurrency=self.concurrency,
            poll_interval=self.poll_interval,
            default_timeout=self.default_timeout,
            result_max_bytes=self.result_max_bytes,
            lease_seconds=self.lease_seconds,
            reaper_interval=self.reaper_interval,
            max_rescues=self.max_rescues,
            max_map_items=self.max_map_items,
            max_workflow_depth=self.max_workflow_depth,
            shutdown_grace=self.shutdown_grace,
            sqlite_synchronous=self.sqlite_synchronous,
            allowed_hosts=self.allowed_hosts,
            allow_private_networks=self.allow_private_networks,
            http_client=self.http_client,
            scheduler=self.scheduler,
            max_template_output_bytes=self.template_max_output_bytes,
            max_template_render_seconds=self.template_max_render_seconds,
            api_keys=self.api_keys,
            admin_keys=self.admin_keys,
            key_refresh_seconds=self.key_refresh_seconds,
            limits=JobLimits(
                max_tasks_per_job=self.max_tasks_per_job,
                max_headers_per_task=self.max_headers_per_task,
                max_header_bytes=self.max_header_bytes,
                max_url_length=self.max_url_length,
            ),
            secret_header_names=frozenset(name.lower() for name in self.secret_headers),
            secret_keys=self.secret_key,
            host_limits=self.host_limits,
            broker_url=self.broker_url,
            broker_prefix=self.broker_prefix,
            public_url=self.public_url or "http://127.0.0.1:8000",
            webhook_secret=self.webhook_secret,
            webhook_backoff_seconds=self.webhook_backoff,
            webhook_timeout=self.webhook_timeout,
        )
