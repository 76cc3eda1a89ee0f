"""The settings every service shares; each service subclasses it with its own env prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Network, limits, batching and logging of one service."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True)

    host: str = Field("127.0.0.1", description="Interface to bind; 0.0.0.0 only behind a network policy.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port.")
    log_level: str = Field("info", description="Log level of the service's loggers.")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Accepted bearer keys, comma-separated; unset means no authentication (with api_keys_file "
        "unset too). A value that holds no key (blank, only commas) is refused.",
    )
    api_keys_file: Path | None = Field(
        None,
        description="A file of accepted bearer keys (a mounted secret): one a line, blank lines and lines "
        "starting with # ignored; added to api_keys. A file without a key is refused at start-up.",
    )
    retry_after_s: int = Field(1, ge=1, le=3600, description="The Retry-After (seconds) of every 429 answer.")
    max_body_bytes: int = Field(8_000_000, ge=1024, description="Largest request body accepted (413 above).")
    max_batch_size: int = Field(32, ge=1, description="Most items the micro-batcher gives the backend at once.")
    batch_wait_ms: float = Field(5.0, ge=0, description="How long a batch waits for more work after its first item.")
    max_queued_items: int = Field(4096, ge=1, description="Items waiting beyond which requests get 429.")
    shutdown_timeout_s: float = Field(
        25.0,
        gt=0,
        description="On SIGTERM the process exits within this many seconds: it stops accepting, answers what "
        "waits on the service at once, lets requests in flight finish, then closes (under Kubernetes' 30 s grace).",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            keys = [k.strip() for k in value.split(",") if k.strip()]
            if value and not keys:
                # A variable set to " , " is a mistake, not a wish to run open.
                raise ValueError("api_keys holds no key (blank or only commas): unset it to run without keys")
            return keys
        return value

    @model_validator(mode="after")
    def _read_keys_file(self) -> Self:
        if self.api_keys_file is not None:
            self.api_keys = [*self.api_keys, *(SecretStr(k) for k in read_keys_file(self.api_keys_file))]
        return self


def read_keys_file(path: Path) -> list[str]:
    """The keys of a keys file: one a line, blank lines and ``#`` comment lines ignored.

    Raises:
        ValueError: the file cannot be read or holds no key (never its content).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the API keys file {path}: {type(exc).__name__}") from exc
    keys = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    if not keys:
        raise ValueError(f"the API keys file {path} holds no key (only blank or # lines)")
    return keys
