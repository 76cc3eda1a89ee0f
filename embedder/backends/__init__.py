"""Embedding backends behind the :class:`~embedder.backends.base.EmbeddingBackend` protocol."""

from __future__ import annotations

from embedder.backends.base import EmbeddingBackend
from embedder.settings import EmbedderSettings


def make_backend(settings: EmbedderSettings) -> EmbeddingBackend:
    """Build (not load) the backend the settings name; heavy imports happen at load time."""
    if settings.backend == "fake":
        from embedder.backends.fake import FakeEmbedder

        return FakeEmbedder(
            model=settings.served_model_name or "fake-embedder",
            max_seq_length=settings.max_seq_length,
            delay_s=settings.fake_delay_s,
        )
    from embedder.backends.sentence_transformers import SentenceTransformersEmbedder

    return SentenceTransformersEmbedder(
        model=settings.model,
        served_model_name=settings.served_model_name,
        device=settings.device,
        max_seq_length=settings.max_seq_length,
        encode_batch_size=settings.encode_batch_size,
    )
