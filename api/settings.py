"""Settings, read from the environment (JOBQUEUE_*) in this one module."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine import DEFAULT_DB_URL, EngineConfig


def _split(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_", extra="ignore")

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
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["text", "json"] = "text"

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        return _split(value)

    @field_validator("sqlite_synchronous", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

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
        )
