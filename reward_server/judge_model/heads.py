"""The judge's trained heads and their artifact (numpy only: serving needs neither torch nor sklearn).

A head is a standardised input followed by a linear layer (softmax or sigmoid) or a one-hidden-layer
MLP. The artifact is one ``.npz``: arrays named ``<head>.<param>`` and a JSON string ``meta`` with the
thresholds, value vocabularies, priors and training figures.

>>> import numpy as np
>>> head = Head(mean=np.zeros(2), std=np.ones(2), weights=[np.eye(2)], biases=[np.zeros(2)])
>>> head.softmax(np.array([[2.0, 0.0]])).round(3).tolist()
[[0.881, 0.119]]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Head:
    """Standardisation, then ``len(weights)`` layers (ReLU between them)."""

    mean: np.ndarray
    std: np.ndarray
    weights: list[np.ndarray]
    biases: list[np.ndarray]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """The last layer's output for a batch ``x`` of shape (n, inputs)."""
        h: np.ndarray = (np.asarray(x, dtype=np.float32) - self.mean) / self.std
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return h

    def softmax(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (n, classes)."""
        z = self.logits(x)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        probs: np.ndarray = e / e.sum(axis=1, keepdims=True)
        return probs

    def sigmoid(self, x: np.ndarray) -> np.ndarray:
        """Probabilities of a one-output head, shape (n,)."""
        # exp(-log(1 + exp(-z))): no overflow for large |z|
        probs: np.ndarray = np.exp(-np.logaddexp(0.0, -self.logits(x)[:, 0]))
        return probs


@dataclass
class Artifact:
    """Every head of the judge and its metadata."""

    heads: dict[str, Head]
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        """Write the ``.npz`` (float16 weights, float32 statistics) and a readable ``.json`` beside it."""
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(self.meta))}
        for name, head in self.heads.items():
            arrays[f"{name}.mean"] = head.mean.astype(np.float32)
            arrays[f"{name}.std"] = head.std.astype(np.float32)
            for i, (w, b) in enumerate(zip(head.weights, head.biases, strict=True)):
                arrays[f"{name}.w{i}"] = w.astype(np.float16)
                arrays[f"{name}.b{i}"] = b.astype(np.float32)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
        path.with_suffix(".json").write_text(json.dumps(self.meta, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Artifact:
        """Read an artifact written by :meth:`save`."""
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            heads: dict[str, Head] = {}
            for name in meta["heads"]:
                n_layers = sum(1 for key in data.files if key.startswith(f"{name}.w"))
                heads[name] = Head(
                    mean=data[f"{name}.mean"].astype(np.float32),
                    std=data[f"{name}.std"].astype(np.float32),
                    weights=[data[f"{name}.w{i}"].astype(np.float32) for i in range(n_layers)],
                    biases=[data[f"{name}.b{i}"].astype(np.float32) for i in range(n_layers)],
                )
        return cls(heads=heads, meta=meta)
