"""COMPEER's redundancy math (eq. 5-7) as tables: tau, similarities, weights and both variants."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.core.redundancy import (
    apply_weight,
    group_redundancy,
    history_similarity,
    in_group_similarity,
    mean_length,
    tau,
    weights,
    word_count,
)


def unit(*rows: list[float]) -> np.ndarray:
    m = np.asarray(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("length", "alpha", "beta", "expected"),
    [
        (5.0, 0.5, 5.0, 0.5),  # at beta the gate is one half
        (0.0, 0.5, 5.0, 1 / (1 + math.exp(2.5))),  # an empty reply is barely gated
        (15.0, 0.5, 5.0, 1 / (1 + math.exp(-5.0))),  # long replies are gated fully
        (7.0, 0.0, 5.0, 0.5),  # alpha 0: a constant one half
        (1e6, 0.5, 5.0, 1.0),  # no overflow far above beta
        (-1e6, 0.5, 5.0, 0.0),  # nor far below
        (10.0, 2.0, 10.0, 0.5),  # another beta
    ],
)
def test_tau_is_the_logistic_gate(length: float, alpha: float, beta: float, expected: float) -> None:
    assert tau(length, alpha, beta) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["a b c", "a"], 2.0),  # words, not characters
        (["  spaced   out  "], 2.0),  # any whitespace splits
        (["", "one two"], 1.0),  # an empty reply counts as zero words
        ([], 0.0),  # an empty group
    ],
)
def test_mean_length_in_words(texts: list[str], expected: float) -> None:
    assert mean_length(texts, word_count) == expected


@pytest.mark.parametrize(
    ("replies", "expected"),
    [
        (unit([1, 0], [1, 0], [1, 0], [1, 0]), [1.0, 1.0, 1.0, 1.0]),  # four identical replies
        (unit([1, 0], [0, 1]), [0.0, 0.0]),  # orthogonal pair
        (unit([1, 0], [-1, 0]), [-1.0, -1.0]),  # opposite pair: the mean cosine is reported as is
        (unit([1, 0], [1, 0], [0, 1]), [0.5, 0.5, 0.0]),  # a pair and a loner
        (unit([1, 1]), [0.0]),  # a group of one has no siblings
    ],
)
def test_in_group_similarity_is_the_mean_cosine_to_the_others(replies: np.ndarray, expected: list[float]) -> None:
    assert in_group_similarity(replies).tolist() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("replies", "history", "expected"),
    [
        (unit([1, 0]), unit([1, 0], [0, 1]), [0.5]),  # mean over the history utterances
        (unit([1, 0], [0, 1]), unit([1, 0]), [1.0, 0.0]),  # per reply
        (unit([1, 0]), np.zeros((0, 2), dtype=np.float32), [0.0]),  # no history
    ],
)
def test_history_similarity_is_the_mean_cosine_to_the_history(
    replies: np.ndarray, history: np.ndarray, expected: list[float]
) -> None:
    assert history_similarity(replies, history).tolist() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("s_in", "s_hi", "gate", "expected"),
    [
        ([1.0], [0.0], 1.0, [0.5]),  # fully redundant with siblings, long replies
        ([1.0], [1.0], 1.0, [0.25]),  # and with the history
        ([1.0], [1.0], 0.0, [1.0]),  # a closed gate: no penalty
        ([0.5], [0.2], 0.5, [1 / (1.25 * 1.1)]),  # the formula
        ([-0.4], [-1.0], 1.0, [1.0]),  # unlike replies are not paid extra
        ([0.0, 1.0], [0.0, 0.0], 0.5, [1.0, 1 / 1.5]),  # per reply
    ],
)
def test_weights(s_in: list[float], s_hi: list[float], gate: float, expected: list[float]) -> None:
    assert weights(s_in, s_hi, gate) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("reward", "weight", "variant", "expected"),
    [
        (4.0, 0.5, "paper", 2.0),  # a positive reward shrinks
        (4.0, 0.5, "sign_aware", 2.0),  # the same in both variants
        (-3.0, 0.5, "paper", -1.5),  # eq. 5 as printed RAISES a redundant negative reward
        (-3.0, 0.5, "sign_aware", -6.0),  # sign_aware lowers it by the same factor
        (0.0, 0.25, "sign_aware", 0.0),  # zero stays zero
        (-3.0, 1.0, "paper", -3.0),  # no redundancy, no change
        (-3.0, 1.0, "sign_aware", -3.0),
    ],
)
def test_apply_weight(reward: float, weight: float, variant: str, expected: float) -> None:
    assert apply_weight(reward, weight, variant) == pytest.approx(expected)  # type: ignore[arg-type]


def test_redundancy_raises_a_negative_reward_in_paper_and_lowers_it_in_sign_aware() -> None:
    identical = group_redundancy(unit([1, 0], [1, 0], [1, 0], [1, 0]), unit([0, 1]), [20, 20, 20, 20])
    w = identical.weights[0]
    assert w < 1
    assert apply_weight(-3.0, w, "paper") > -3.0
    assert apply_weight(-3.0, w, "sign_aware") < -3.0
    assert apply_weight(3.0, w, "paper") == apply_weight(3.0, w, "sign_aware") < 3.0


def test_group_redundancy_puts_the_pieces_together() -> None:
    replies = unit([1, 0], [1, 0], [0, 1])
    history = unit([0, 1], [1, 1])
    got = group_redundancy(replies, history, [4, 6, 8], alpha=0.5, beta=5.0)
    gate = 1 / (1 + math.exp(-0.5 * (6 - 5)))
    assert got.mean_length == 6 and got.tau == pytest.approx(gate)
    assert got.s_in == pytest.approx([0.5, 0.5, 0.0], abs=1e-6)
    assert got.s_hi == pytest.approx([math.sqrt(0.5) / 2, math.sqrt(0.5) / 2, (1 + math.sqrt(0.5)) / 2], abs=1e-6)
    expected = [1 / ((1 + gate * a) * (1 + gate * b)) for a, b in zip(got.s_in, got.s_hi, strict=True)]
    assert got.weights == pytest.approx(expected)
    with pytest.raises(ValueError, match="lengths"):
        group_redundancy(replies, history, [1, 2])
