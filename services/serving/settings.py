"""The settings every service shares; each service subclasses it with its own env prefix."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Network, limits, batching and logging of one service."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True)

    host: str = Field("127.0.0.1", description="Interface to bind; 0.0.0.0 only behind a network policy.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port.")
    log_level: str = Field("info", description="Log level of the service's loggers.")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Accepted bearer keys, comma-separated; empty means no authentication.",
    )
    max_body_bytes: int = Field(8_000_000, ge=1024, description="Largest request body accepted (413 above).")
    max_batch_size: int = Field(32, ge=1, description="Most items the micro-batcher gives the backend at once.")
    batch_wait_ms: float = Field(5.0, ge=0, description="How long a batch waits for more work after its first item.")
    max_queued_items: int = Field(4096, ge=1, description="Items waiting beyond which requests get 429.")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value
