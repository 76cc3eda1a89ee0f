"""Response models every service shares: health, readiness and the model list (pydantic only)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

LoadStatus = Literal["ok", "loading", "failed"]


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
