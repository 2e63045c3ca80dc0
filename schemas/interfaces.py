"""InterfaceMaster documents on the wire."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"


class InterfaceMasterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, max_length=128)
    description: str | None = Field(default=None, max_length=10_000)
    input_schema: dict[str, JsonValue] | bool | None = None
    output_schema: dict[str, JsonValue] | bool | None = None


class InterfaceMasterUpdate(BaseModel):
    """``PUT``: the fields given replace the stored ones; ``version`` goes up by one."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, pattern=NAME_PATTERN, max_length=128)
    description: str | None = Field(default=None, max_length=10_000)
    input_schema: dict[str, JsonValue] | bool | None = None
    output_schema: dict[str, JsonValue] | bool | None = None
