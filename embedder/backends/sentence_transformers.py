"""The sentence-transformers backend: any local or cached model, the packaged MiniLM by default."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedder.backends.base import EmbeddingBackendError, FloatArray
from services.models.sentence_encoder import embedding_dimension, load_sentence_model

logger = logging.getLogger(__name__)


class SentenceTransformersEmbedder:
    """The ``sentence-transformers`` backend.

    Args:
        model: local path or hub name; the packaged all-MiniLM-L6-v2 when None.
        served_model_name: model id in responses; the model folder's name when None.
        device: torch device.
        max_seq_length: tokens per text.
        encode_batch_size: texts per forward pass; sentence-transformers sorts a batch by length and
            cuts it into passes of this size, so short texts are not padded to the longest.
    """

    name = "sentence-transformers"

    def __init__(
        self,
        model: str | None = None,
        served_model_name: str | None = None,
        device: str = "cpu",
        max_seq_length: int = 256,
        encode_batch_size: int = 16,
    ) -> None:
        self.path = model
        self.model = served_model_name or (Path(model).name if model else "all-MiniLM-L6-v2")
        self.device = device
        self.max_seq_length = max_seq_length
        self.encode_batch_size = encode_batch_size
        self.dimensions = 0
        self._st: Any = None
        self._counter: Any = None

    async def start(self) -> None:
        """Load the model in a worker thread and encode one text to warm it up."""
        self._st = await asyncio.to_thread(load_sentence_model, self.path, self.device, self.max_seq_length)
        # A fast tokenizer carries padding and truncation state: counting tokens on the event loop with the
        # instance that encodes in the worker thread corrupts batches ("expected sequence of length ...").
        self._counter = copy.deepcopy(self._st.tokenizer)
        self.max_seq_length = int(self._st.max_seq_length)
        self.dimensions = embedding_dimension(self._st)
        await self.embed(["warming up"])

    async def close(self) -> None:
        """Drop the model."""
        self._st = self._counter = None

    def healthy(self) -> bool:
        """Always: an in-process model has no engine to lose (a failed batch fails alone)."""
        return True

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens the model reads per text (special tokens included, truncated)."""
        if not texts:
            return []
        ids = self._counter(list(texts), truncation=True, max_length=self.max_seq_length)["input_ids"]
        return [len(x) for x in ids]

    def reply_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text without special tokens or truncation."""
        if not texts:
            return []
        ids = self._counter(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(x) for x in ids]

    def _encode(self, texts: list[str]) -> FloatArray:
        vectors = self._st.encode(
            texts,
            batch_size=self.encode_batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    async def embed(self, texts: Sequence[str]) -> FloatArray:
        """Encode one batch in a worker thread (never on the event loop).

        Raises:
            EmbeddingBackendError: the model is not loaded or failed.
        """
        if self._st is None:
            raise EmbeddingBackendError("the model is not loaded")
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        try:
            return await asyncio.to_thread(self._encode, list(texts))
        except Exception as exc:  # torch errors (out of memory, bad input) fail this batch only
            logger.exception("encoding %d texts failed", len(texts))
            raise EmbeddingBackendError(f"encoding failed: {type(exc).__name__}") from exc
