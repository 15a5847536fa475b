"""The documented shape of every error response (RFC 9457 problem details)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FieldError(BaseModel):
    """One invalid field of a request."""

    field: str
    location: str | None = None
    message: str
    type: str


class Problem(BaseModel):
    """``application/problem+json`` body; ``error`` is the stable machine code."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:problem-type:not_found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str
    instance: str | None = None
    error: str = Field(examples=["not_found"])
    request_id: str | None = None
    errors: list[FieldError] | None = None
