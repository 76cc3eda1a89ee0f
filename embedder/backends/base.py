"""The embedding backend protocol.

A backend turns texts into unit-length vectors. It is created by the app's lifespan, ``start``-ed
(loaded and warmed), called with batches gathered by the micro-batcher, and ``close``-d on shutdown.
``count_tokens`` is called on the event loop for every request (to bound batches by tokens and to
report usage), so it must be cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


class EmbeddingBackendError(RuntimeError):
    """The backend failed on a batch; the requests of that batch get 502."""


@runtime_checkable
class EmbeddingBackend(Protocol):
    """What the embedding service needs from a model."""

    #: Backend kind (``sentence-transformers``, ``fake``).
    name: str
    #: Model id reported by ``/v1/models`` and in every response.
    model: str
    #: Length of every vector (known once started).
    dimensions: int
    #: Tokens per text; longer texts are truncated.
    max_seq_length: int

    async def start(self) -> None:
        """Load and warm up; after it returns the service is ready."""

    async def close(self) -> None:
        """Release the model."""

    def healthy(self) -> bool:
        """False once the backend can no longer embed (so ``/ready`` fails); True otherwise."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text as the model reads it (after truncation, with special tokens)."""

    def reply_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text without special tokens or truncation (the length of a reply in tokens)."""

    async def embed(self, texts: Sequence[str]) -> FloatArray:
        """Unit-length embeddings, shape ``(len(texts), dimensions)``, float32.

        Raises:
            EmbeddingBackendError: the batch failed.
        """
