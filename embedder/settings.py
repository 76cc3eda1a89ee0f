"""The embedding service's settings, from ``EMBEDDER_*`` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.serving.settings import ServiceSettings

EmbedderBackendName = Literal["sentence-transformers", "fake"]


class EmbedderSettings(ServiceSettings):
    """Everything the embedding service can be told; ``python -m embedder`` reads it."""

    model_config = SettingsConfigDict(env_prefix="EMBEDDER_", extra="forbid", validate_default=True)

    port: int = Field(8001, ge=1, le=65535, description="TCP port.")
    backend: EmbedderBackendName = Field(
        "sentence-transformers", description="Embedding backend: sentence-transformers, or fake (tests)."
    )
    model: str | None = Field(
        None,
        description="A sentence-transformers model: local path or hub name. Default: the packaged all-MiniLM-L6-v2.",
    )
    served_model_name: str | None = Field(
        None, description="Model id in responses and accepted in requests. Default: the model's folder name."
    )
    device: str = Field("cpu", description="Torch device (cpu, cuda, cuda:1...).")
    max_seq_length: int = Field(256, ge=8, le=8192, description="Tokens per text; longer texts are truncated.")
    max_batch_size: int = Field(128, ge=1, description="Most texts the micro-batcher gives the model at once.")
    batch_wait_ms: float = Field(
        0.0,
        ge=0,
        description="How long a batch waits for more work after its first text; 0: none (work that queues "
        "while the model is busy still joins the next batch).",
    )
    encode_batch_size: int = Field(
        16,
        ge=1,
        description="Texts per forward pass within a batch; texts are sorted by length first, so little padding.",
    )
    max_batch_tokens: int = Field(
        16_384, ge=8, description="Token budget of a batch (texts vary in length; a batch always takes one request)."
    )
    max_texts_per_request: int = Field(2048, ge=1, description="Most texts in one embeddings request (413 above).")
    max_text_chars: int = Field(32_000, ge=100, description="Longest text accepted (422 above).")
    max_groups_per_request: int = Field(256, ge=1, description="Most groups in one redundancy request (413 above).")
    max_group_size: int = Field(256, ge=1, description="Most candidates in one group (413 above).")
    max_history_messages: int = Field(400, ge=0, description="Most history utterances of one group (413 above).")
    history_cache_size: int = Field(
        50_000, ge=0, description="History-utterance embeddings kept (least recently used go first); 0: no cache."
    )
    fake_delay_s: float = Field(
        0.0, ge=0, description="Seconds the fake backend sleeps per batch (load and fault tests); 0: none."
    )

    @model_validator(mode="after")
    def _batch_fits(self) -> EmbedderSettings:
        if self.max_batch_tokens < self.max_seq_length:
            raise ValueError(
                f"max_batch_tokens ({self.max_batch_tokens}) must hold one text of "
                f"max_seq_length ({self.max_seq_length})"
            )
        return self
