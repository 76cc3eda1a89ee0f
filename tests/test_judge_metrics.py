"""Judge metrics as tables (values checked by hand and against scikit-learn's definitions)."""

from __future__ import annotations

import pytest

from services.data.judge_metrics import (
    accuracy,
    f1_score,
    inconsistency_ratio,
    is_inconsistent,
    preference_metrics,
    recall,
    step_metrics,
    weighted_f1,
)

T, F = True, False


@pytest.mark.parametrize(
    ("y_true", "y_pred", "expected"),
    [
        ([T, T, F, F], [T, T, F, F], 1.0),  # perfect
        ([T, T, F, F], [F, F, T, T], 0.0),  # all wrong
        ([T, T, F, F], [T, F, F, F], 0.7333333),  # T: f1 2/3, F: f1 0.8 -> mean
        ([T, T, T, F], [T, T, T, T], 0.6428571),  # T f1 6/7 weight 3/4, F f1 0
        (["a", "b", "c"], ["a", "a", "d"], 0.2222222),  # a f1 2/3 weight 1/3; predicted-only class d weighs 0
        ([], [], 0.0),  # no items
    ],
)
def test_weighted_f1(y_true: list[object], y_pred: list[object], expected: float) -> None:
    assert weighted_f1(y_true, y_pred) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "label", "expected"),
    [
        ([T, F, F], [T, T, F], F, 0.5),  # one of two False caught
        ([T, T], [T, F], F, 0.0),  # no True label False: recall 0 by convention
        ([F, F], [F, F], F, 1.0),
    ],
)
def test_recall(y_true: list[bool], y_pred: list[bool], label: bool, expected: float) -> None:
    assert recall(y_true, y_pred, label) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "label", "expected"),
    [
        ([T, F], [T, F], T, 1.0),
        ([T, F], [F, F], T, 0.0),  # never predicted
        ([T, T, F], [T, F, T], T, 0.5),  # tp 1, fp 1, fn 1
    ],
)
def test_f1_score(y_true: list[bool], y_pred: list[bool], label: bool, expected: float) -> None:
    assert f1_score(y_true, y_pred, label) == pytest.approx(expected)


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        accuracy([1, 2], [1])
    with pytest.raises(ValueError):
        inconsistency_ratio([[T]], [])


@pytest.mark.parametrize(
    ("steps", "preference", "expected"),
    [
        ([T, T, T], "first", True),  # all steps right yet the reference is better
        ([T, T, T], "neither", True),
        ([T, T, T], "second", False),
        ([T, T, T], "equal", False),
        ([F, F, F], "equal", True),  # every step wrong yet the reply is as good
        ([F, F, F], "first", False),
        ([T, F, T], "first", False),  # mixed steps are never inconsistent
        ([T, F, T], "second", False),
        ([], "first", False),  # orm: no steps
    ],
)
def test_is_inconsistent(steps: list[bool], preference: str, expected: bool) -> None:
    assert is_inconsistent(steps, preference) is expected


def test_inconsistency_ratio_skips_unread_items() -> None:
    steps = [[T, T, T], [F, F, F], [T, None, T], [T, T, T]]
    prefs = ["first", "equal", "first", None]
    assert inconsistency_ratio(steps, prefs) == pytest.approx(1.0)  # only the first two are fully read
    assert inconsistency_ratio([[T, T]], ["second"]) == 0.0
    assert inconsistency_ratio([], []) == 0.0


def test_unread_counts_as_miss() -> None:
    assert step_metrics([T, F], [T, None])["false_recall"] == 0.0
    m = preference_metrics(["first", "second"], ["first", None])
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["weighted_f1"] == pytest.approx(0.5)
