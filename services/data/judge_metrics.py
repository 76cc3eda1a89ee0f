"""The judge's metrics (COMPEER Table 1), as pure functions without scikit-learn.

- Per step: weighted F1 over the True/False classes and the recall of the False class (how many wrong
  steps the judge catches).
- Response: weighted F1 over the four preference labels and accuracy.
- Process/outcome inconsistency ratio: among items whose steps and preference were all read, the
  share where the judge accepts every step but prefers the reference or rejects both replies
  (``first``/``neither``), or rejects every step but prefers the candidate or finds both good
  (``second``/``equal``). It is reported for the judge and, as a yardstick, for the gold labels.

Weighted F1 follows scikit-learn's ``average="weighted"``: per-class F1 weighted by each class's share
of the true labels; a class that is never true has weight 0; F1 is 0 when precision and recall are 0.

>>> round(weighted_f1([True, True, False, False], [True, False, False, False]), 4)
0.7333
>>> recall([True, False, False], [True, True, False], False)
0.5
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence

NEGATIVE_PREFERENCES = frozenset({"first", "neither"})
POSITIVE_PREFERENCES = frozenset({"second", "equal"})


def _check(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")


def f1_score(y_true: Sequence[Hashable], y_pred: Sequence[Hashable], label: Hashable) -> float:
    """F1 of one class (0.0 when the class is neither true nor predicted, or nothing matches).

    Raises:
        ValueError: the sequences differ in length.
    """
    _check(y_true, y_pred)
    tp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == label and p == label)
    fp = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t != label and p == label)
    fn = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == label and p != label)
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def recall(y_true: Sequence[Hashable], y_pred: Sequence[Hashable], label: Hashable) -> float:
    """Share of the items truly ``label`` that are predicted ``label`` (0.0 when there are none).

    Raises:
        ValueError: the sequences differ in length.
    """
    _check(y_true, y_pred)
    support = sum(1 for t in y_true if t == label)
    if support == 0:
        return 0.0
    return sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == label and p == label) / support


def weighted_f1(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> float:
    """Per-class F1 weighted by the true labels' class shares (0.0 for no items).

    Raises:
        ValueError: the sequences differ in length.
    """
    _check(y_true, y_pred)
    if not y_true:
        return 0.0
    support = Counter(y_true)
    return sum(n * f1_score(y_true, y_pred, label) for label, n in support.items()) / len(y_true)


def accuracy(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> float:
    """Share of exact matches (0.0 for no items).

    Raises:
        ValueError: the sequences differ in length.
    """
    _check(y_true, y_pred)
    if not y_true:
        return 0.0
    return sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == p) / len(y_true)


def is_inconsistent(steps: Sequence[bool], preference: str) -> bool:
    """Whether step verdicts and preference disagree (module docstring).

    >>> is_inconsistent([True, True, True], "first"), is_inconsistent([False, False], "equal")
    (True, True)
    >>> is_inconsistent([True, False, True], "first"), is_inconsistent([True, True], "second")
    (False, False)
    """
    if steps and all(steps) and preference in NEGATIVE_PREFERENCES:
        return True
    return bool(steps) and not any(steps) and preference in POSITIVE_PREFERENCES


def inconsistency_ratio(steps: Sequence[Sequence[bool | None]], preferences: Sequence[str | None]) -> float:
    """Share of inconsistent items among those with every verdict and the preference read.

    Args:
        steps: per item, the step verdicts (None where unreadable).
        preferences: per item, the preference (None where unreadable).

    Returns:
        The ratio; 0.0 when no item is fully read.

    Raises:
        ValueError: the sequences differ in length.
    """
    _check(steps, preferences)
    read = [
        (list(s), p)
        for s, p in zip(steps, preferences, strict=True)
        if p is not None and s and all(v is not None for v in s)
    ]
    if not read:
        return 0.0
    return sum(1 for s, p in read if is_inconsistent([bool(v) for v in s], p)) / len(read)


def step_metrics(y_true: Sequence[bool], y_pred: Sequence[bool | None]) -> dict[str, float]:
    """Weighted F1 and False-class recall of one step; an unreadable verdict counts as a miss.

    >>> step_metrics([True, False], [True, None])
    {'weighted_f1': 0.5, 'false_recall': 0.0, 'n': 2}
    """
    pred: list[Hashable] = ["unread" if p is None else p for p in y_pred]
    return {
        "weighted_f1": weighted_f1(list(y_true), pred),
        "false_recall": recall(list(y_true), pred, False),
        "n": len(y_true),
    }


def preference_metrics(y_true: Sequence[str], y_pred: Sequence[str | None]) -> dict[str, float]:
    """Weighted F1 and accuracy over the four preference labels; unreadable counts as a miss."""
    pred: list[Hashable] = ["unread" if p is None else p for p in y_pred]
    return {"weighted_f1": weighted_f1(list(y_true), pred), "accuracy": accuracy(list(y_true), pred), "n": len(y_true)}
