"""Redundancy reweighting of a GRPO group's rewards (COMPEER eq. 5-7), as pure functions.

For candidate ``i`` of a group of ``G`` replies to one dialogue:

- ``s_in[i]``: mean cosine similarity of reply ``i`` to the other ``G - 1`` replies (0 when ``G = 1``);
- ``s_hi[i]``: mean cosine similarity of reply ``i`` to the dialogue's history utterances (0 without
  history);
- ``tau = 1 / (1 + exp(-alpha (L - beta)))``, ``L`` the mean reply length of the group (words by
  default), so short replies are barely penalised and long ones fully;
- ``weight[i] = 1 / ((1 + tau s_in[i]) (1 + tau s_hi[i]))``.

Similarities below zero count as zero in the weight: a reply unlike its siblings keeps its reward but
is not paid extra for it. Two ways to apply the weight:

- ``paper``: ``r~ = r * weight`` (eq. 5 as printed). A redundant reply with a negative reward moves
  towards zero, i.e. is *raised*.
- ``sign_aware``: ``r~ = r * weight`` for ``r >= 0`` and ``r / weight`` for ``r < 0``: redundancy
  lowers the reward whatever its sign, by the same factor.

>>> w = weights([1.0, 1.0], [0.0, 0.0], tau=1.0)
>>> [round(x, 3) for x in w]
[0.5, 0.5]
>>> apply_weight(-2.0, 0.5, "paper"), apply_weight(-2.0, 0.5, "sign_aware")
(-1.0, -4.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.core.types import Variant

VARIANTS: tuple[Variant, ...] = ("paper", "sign_aware")
DEFAULT_ALPHA = 0.5
DEFAULT_BETA = 5.0

FloatArray = npt.NDArray[np.float32]


def word_count(text: str) -> int:
    """Length of a reply in whitespace-separated words.

    >>> word_count("  I hear you.  That sounds hard ")
    6
    """
    return len(text.split())


def tau(mean_length: float, alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA) -> float:
    """The length gate ``1 / (1 + exp(-alpha (L - beta)))``, computed without overflow.

    >>> tau(5.0)
    0.5
    >>> round(tau(25.0), 4)
    1.0
    """
    z = -alpha * (mean_length - beta)
    if z >= 0:
        e = math.exp(-z)
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(z))


def mean_length(texts: Sequence[str], length: Callable[[str], int] = word_count) -> float:
    """Mean length of the group's replies; 0 for an empty group."""
    return sum(length(t) for t in texts) / len(texts) if texts else 0.0


def in_group_similarity(replies: FloatArray) -> FloatArray:
    """``s_in``: each row's mean cosine to the other rows.

    Args:
        replies: unit-length embeddings of the group's replies, shape (G, d).

    Returns:
        Shape (G,); zeros when ``G <= 1``.
    """
    g = replies.shape[0]
    if g <= 1:
        return np.zeros(g, dtype=np.float32)
    sims = replies @ replies.T
    off_diagonal = sims.sum(axis=1) - np.diag(sims)
    result: FloatArray = (off_diagonal / (g - 1)).astype(np.float32)
    return result


def history_similarity(replies: FloatArray, history: FloatArray) -> FloatArray:
    """``s_hi``: each reply's mean cosine to the history utterances.

    Args:
        replies: unit-length embeddings, shape (G, d).
        history: unit-length embeddings of the history utterances, shape (H, d).

    Returns:
        Shape (G,); zeros when ``H == 0``.
    """
    if history.shape[0] == 0:
        return np.zeros(replies.shape[0], dtype=np.float32)
    result: FloatArray = (replies @ history.T).mean(axis=1).astype(np.float32)
    return result


def weights(s_in: Sequence[float], s_hi: Sequence[float], tau: float) -> list[float]:
    """``1 / ((1 + tau s_in)(1 + tau s_hi))`` per reply, negative similarities counted as zero.

    >>> weights([0.5, -0.3], [0.0, 0.0], tau=0.5)
    [0.8, 1.0]
    """
    return [1.0 / ((1.0 + tau * max(a, 0.0)) * (1.0 + tau * max(b, 0.0))) for a, b in zip(s_in, s_hi, strict=True)]


def apply_weight(reward: float, weight: float, variant: Variant = "paper") -> float:
    """The reweighted reward ``r~``.

    Args:
        reward: the raw reward ``r``.
        weight: the redundancy weight, in (0, 1].
        variant: ``paper`` (``r * weight``) or ``sign_aware`` (a negative reward is divided by the
            weight instead, so it falls).

    Returns:
        ``r~``.

    >>> apply_weight(3.0, 0.5), apply_weight(3.0, 0.5, "sign_aware")
    (1.5, 1.5)
    """
    if variant == "sign_aware" and reward < 0:
        return reward / weight
    return reward * weight


@dataclass(frozen=True)
class GroupRedundancy:
    """Redundancy of one group: per-reply similarities and weights, and the group's gate."""

    s_in: list[float]
    s_hi: list[float]
    tau: float
    mean_length: float
    weights: list[float]


def group_redundancy(
    replies: FloatArray,
    history: FloatArray,
    lengths: Sequence[int],
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
) -> GroupRedundancy:
    """Everything eq. 5-7 needs for one group.

    Args:
        replies: unit-length embeddings of the G replies, shape (G, d).
        history: unit-length embeddings of the H history utterances, shape (H, d).
        lengths: the length of each reply (words or tokens), G values.
        alpha: steepness of the length gate.
        beta: length at which the gate is one half.

    Returns:
        The group's :class:`GroupRedundancy`.

    Raises:
        ValueError: ``lengths`` does not have one value per reply.
    """
    if len(lengths) != replies.shape[0]:
        raise ValueError(f"{len(lengths)} lengths for {replies.shape[0]} replies")
    mean_len = sum(lengths) / len(lengths) if lengths else 0.0
    gate = tau(mean_len, alpha, beta)
    s_in = [float(x) for x in in_group_similarity(replies)]
    s_hi = [float(x) for x in history_similarity(replies, history)]
    return GroupRedundancy(s_in, s_hi, gate, mean_len, weights(s_in, s_hi, gate))
