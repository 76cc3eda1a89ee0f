"""The reward service's settings, from ``REWARD_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from services.redundancy import DEFAULT_ALPHA, DEFAULT_BETA, LengthUnit, Variant
from services.rewards import UnparseablePolicy
from services.settings import ServiceSettings

BackendName = Literal["classifier", "fake"]


class RewardSettings(ServiceSettings):
    """Everything the reward service can be told; ``python -m reward_server`` and the CLI read it."""

    model_config = SettingsConfigDict(env_prefix="REWARD_", extra="forbid", validate_default=True)

    port: int = Field(8000, ge=1, le=65535, description="TCP port.")
    backend: BackendName = Field("classifier", description="Judge backend: classifier (CPU default) or fake (tests).")
    model: str | None = Field(
        None, description="Model of the backend; for classifier, the artifact (.npz) path. Default: the packaged one."
    )
    encoder: str | None = Field(
        None, description="Sentence encoder of the classifier judge (path or name). Default: the packaged MiniLM."
    )
    device: str = Field("cpu", description="Torch device of local models (cpu, cuda, cuda:1...).")
    unparseable: UnparseablePolicy = Field(
        UnparseablePolicy.ZERO,
        description="How a judgment the parser cannot read counts: zero, negative (-1) or positive (+1).",
    )
    max_items_per_request: int = Field(256, ge=1, description="Most items in one judge request (413 above).")
    max_field_chars: int = Field(16_000, ge=100, description="Longest text field (candidate, reference, message).")
    max_history_messages: int = Field(200, ge=1, description="Most dialogue messages per item.")

    embedder_url: str | None = Field(
        "http://127.0.0.1:8001",
        description="The embedding service that /v1/rewards asks for redundancy; empty: rewards are unweighted.",
    )
    embedder_api_key: SecretStr | None = Field(
        None, description="Bearer key for the embedding service, if it has keys."
    )
    embedder_timeout_s: float = Field(
        10.0, gt=0, description="Deadline of the redundancy call; past it, rewards come back unweighted and flagged."
    )
    redundancy_variant: Variant = Field(
        "paper", description="paper: r * weight (eq. 5 as printed); sign_aware: redundancy lowers any reward."
    )
    redundancy_alpha: float = Field(DEFAULT_ALPHA, ge=0, description="Steepness of the length gate tau.")
    redundancy_beta: float = Field(DEFAULT_BETA, ge=0, description="Reply length at which tau is 1/2.")
    redundancy_length_unit: LengthUnit = Field("words", description="Reply length in words or embedder tokens.")

    @field_validator("embedder_url", mode="before")
    @classmethod
    def _empty_url_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def artifact_path(self) -> Path | None:
        """The classifier artifact, when one is named."""
        return Path(self.model) if self.model else None
