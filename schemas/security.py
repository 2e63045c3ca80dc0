"""Wire models of API keys and the audit log (``/api/v1/keys``, ``/api/v1/audit``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$"


class KeyCreate(BaseModel):
    """A new API key: its name becomes the owner of the jobs the key creates."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=KEY_NAME_PATTERN, max_length=128)
    admin: bool = False


class KeyInfo(BaseModel):
    name: str
    admin: bool
    source: Literal["environment", "database"]
    prefix: str | None = Field(description="the key's first characters, to recognise it")
    created_at: str | None
    revoked_at: str | None


class KeyList(BaseModel):
    items: list[KeyInfo]


class CreatedKey(KeyInfo):
    key: str = Field(description="the key itself: shown only in this answer, never again")


class AuditRecord(BaseModel):
    id: int
    at: str
    actor: str = Field(description="the key's name, or `anonymous` when no key is configured")
    action: str = Field(examples=["job.create", "job.cancel", "key.revoke"])
    target: str | None = Field(description="the job id, InterfaceMaster id or key name")
    address: str | None = Field(description="the client's address")


class AuditPage(BaseModel):
    items: list[AuditRecord]
    next_cursor: str | None = Field(
        description="pass it back as `cursor` for the next page; `null` on the last"
    )
