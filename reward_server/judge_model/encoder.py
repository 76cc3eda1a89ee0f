"""The judge's frozen sentence encoder: the packaged all-MiniLM-L6-v2, offline, on CPU by default."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from services.models.sentence_encoder import embedding_dimension, load_sentence_model

log = logging.getLogger(__name__)
#: Replies and messages are short (p95 41 words); longer texts are cut here.
MAX_SEQ_LENGTH = 128


def load_encoder(path: str | Path | None = None, device: str = "cpu") -> Any:
    """Load the judge's sentence encoder without touching the network.

    Args:
        path: a local model directory; the packaged MiniLM when None.
        device: torch device.

    Returns:
        The ``SentenceTransformer``, reading at most :data:`MAX_SEQ_LENGTH` tokens per text.
    """
    return load_sentence_model(path, device, MAX_SEQ_LENGTH)


#: Texts per forward pass. sentence-transformers sorts a call's texts by length and pads each pass to its
#: longest, so on CPU short passes waste little on padding even when a call has few, mixed texts: 16 was
#: the fastest in the embedder's measurement (docs/embedder.md), and a judge batch of a few items is a
#: call of a few dozen texts of every length.
ENCODE_BATCH_SIZE = 16


def embed_texts(model: Any, texts: list[str], batch_size: int = ENCODE_BATCH_SIZE) -> np.ndarray:
    """Unit-length embeddings of ``texts`` as float32, shape (n, dim)."""
    if not texts:
        return np.zeros((0, embedding_dimension(model)), dtype=np.float32)
    vectors = model.encode(
        texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)


class CachedEmbedder:
    """``embed_texts`` with an optional on-disk table (text -> vector), to re-run training quickly.

    Args:
        model: the sentence-transformers model.
        path: an ``.npz`` written by :meth:`save`; None keeps nothing on disk.
    """

    def __init__(self, model: Any, path: str | Path | None = None) -> None:
        self.model = model
        self.path = Path(path) if path else None
        self.table: dict[str, np.ndarray] = {}
        if self.path is not None and self.path.exists():
            with np.load(self.path, allow_pickle=False) as data:
                self.table = dict(zip(data["texts"].tolist(), data["vectors"], strict=True))

    def __call__(self, texts: list[str]) -> np.ndarray:
        todo = sorted({t for t in texts if t not in self.table})
        if todo:
            log.info("encoding %d new texts", len(todo))
            self.table.update(zip(todo, embed_texts(self.model, todo), strict=True))
            self.save()
        return np.stack([self.table[t] for t in texts]) if texts else embed_texts(self.model, [])

    def save(self) -> None:
        """Write the table when a path was given."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        texts = list(self.table)
        np.savez(self.path, texts=np.array(texts), vectors=np.stack([self.table[t] for t in texts]))
