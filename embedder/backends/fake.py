"""A deterministic embedding backend for tests: hashed bags of words, no model.

Equal texts get equal vectors, texts sharing words get similar ones, and a text with no words gets
a fixed vector. ``fail = True`` makes every batch fail, ``dead = True`` too and makes ``healthy()``
False, ``nan = True`` gives NaN vectors, and ``delay_s`` slows every batch, so tests can reach the
service's error paths. Every call is recorded in ``batches``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

import numpy as np

from embedder.backends.base import EmbeddingBackendError, FloatArray


class FakeEmbedder:
    """The ``fake`` backend."""

    name = "fake"

    def __init__(
        self, model: str = "fake-embedder", dimensions: int = 384, max_seq_length: int = 256, delay_s: float = 0.0
    ) -> None:
        self.model = model
        self.dimensions = dimensions
        self.max_seq_length = max_seq_length
        self.delay_s = delay_s
        self.fail = False
        self.dead = False
        self.nan = False
        self.batches: list[list[str]] = []

    async def start(self) -> None:
        """Nothing to load."""

    async def close(self) -> None:
        """Nothing to release."""

    def healthy(self) -> bool:
        """False while ``dead`` is set."""
        return not self.dead

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Words plus two special tokens, truncated."""
        return [min(len(t.split()) + 2, self.max_seq_length) for t in texts]

    def reply_tokens(self, texts: Sequence[str]) -> list[int]:
        """Words."""
        return [len(t.split()) for t in texts]

    def _vector(self, text: str) -> FloatArray:
        vec = np.zeros(self.dimensions, dtype=np.float32)
        for word in text.lower().split():
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            vec[int.from_bytes(digest[:4], "little") % self.dimensions] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0
            return vec
        return vec / norm

    async def embed(self, texts: Sequence[str]) -> FloatArray:
        """Hashed bag-of-words vectors; see the module docstring."""
        self.batches.append(list(texts))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail or self.dead:
            raise EmbeddingBackendError("the fake embedder failed on purpose")
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if self.nan:
            return np.full((len(texts), self.dimensions), np.nan, dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])
