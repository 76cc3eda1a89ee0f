"""Models every service shares: the strict base, health, readiness, the model list and the error envelope."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

LoadStatus = Literal["ok", "loading", "failed", "unhealthy", "stopping"]


class StrictModel(BaseModel):
    """Base of every request and response model: unknown fields are an error, never dropped."""

    model_config = ConfigDict(extra="forbid")


class Health(StrictModel):
    """``/health`` and ``/ready``."""

    status: LoadStatus
    backend: str
    model: str


class ModelCard(StrictModel):
    """One entry of ``/v1/models``."""

    id: str
    object: Literal["model"] = "model"
    owned_by: str = "unifireward"
    backend: str


class ModelList(StrictModel):
    """``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    """The inside of the error envelope."""

    message: str
    type: str
    code: str
    param: str | None = None


class ErrorResponse(BaseModel):
    """Every error answer: ``{"error": {"message", "type", "code", "param"}}``."""

    error: ErrorBody
