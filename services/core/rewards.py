"""COMPEER's reward rules: step accuracy, response preference and format completeness.

- Step accuracy: +1 per step judged correct, -1 per step judged incorrect. A step the candidate did
  not write is incorrect (-1) without asking the judge.
- Response preference (the reference is the first reply, the candidate's the second): first better
  -1, second better +1, almost equally good +1, neither acceptable -1.
- Format completeness: +1 when every step, every required field and the reply are present, else -1.
- The reward is the sum; ``prm`` leaves out the preference, ``orm`` the steps.

A judgment that cannot be parsed is counted by :class:`UnparseablePolicy` (``zero`` by default: it
adds nothing) and the result's status is ``parse_error`` whatever the policy.

>>> compeer_reward([True, False, True], "equal", True, UnparseablePolicy.ZERO).reward
3
>>> compeer_reward([None], "first", False, UnparseablePolicy.NEGATIVE).reward
-3
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from services.core.types import Preference, Scoring

PREFERENCE_REWARD: dict[Preference, int] = {"first": -1, "second": 1, "equal": 1, "neither": -1}


class UnparseablePolicy(StrEnum):
    """How a judgment the parser cannot read counts in the reward."""

    ZERO = "zero"  # adds 0: the judge's failure neither rewards nor punishes the policy
    NEGATIVE = "negative"  # adds -1: conservative, treats an unreadable verdict as a failure
    POSITIVE = "positive"  # adds +1: benefit of the doubt


@dataclass(frozen=True)
class RewardBreakdown:
    """The components of one candidate's reward.

    Attributes:
        steps: one value per step of the schema in order (+1, -1, or the unparseable value; with
            ``expected`` scoring 2 p - 1 where the judge gave a probability); empty in ``orm``.
        preference: +1/-1, the unparseable value (with ``expected`` scoring the expectation over the
            options where the judge gave their probabilities), or None in ``prm``.
        format: +1 or -1 (rule-based under either scoring).
        unparsed: how many judgments could not be read.
        without_probability: under ``expected`` scoring, the read judgments that came without a
            probability and count their discrete value (a step decided by rule, a judge that gives none).
    """

    steps: tuple[float, ...]
    preference: float | None
    format: int
    unparsed: int
    without_probability: int = 0

    @property
    def reward(self) -> float:
        """The sum of all components."""
        return sum(self.steps) + (self.preference or 0) + self.format


def _unparsed_value(policy: UnparseablePolicy) -> int:
    return {UnparseablePolicy.ZERO: 0, UnparseablePolicy.NEGATIVE: -1, UnparseablePolicy.POSITIVE: 1}[policy]


def expected_step(p_correct: float) -> float:
    """The expectation of a step's +1/-1 when it is correct with probability ``p_correct``: 2 p - 1.

    >>> expected_step(0.75), expected_step(0.5), expected_step(0.0)
    (0.5, 0.0, -1.0)
    """
    return 2.0 * p_correct - 1.0


def expected_preference(probabilities: Mapping[Preference, float]) -> float:
    """The expectation of the preference's +1/-1: P(second) + P(equal) - P(first) - P(neither).

    >>> expected_preference({"first": 0.1, "second": 0.2, "equal": 0.6, "neither": 0.1})
    0.6
    """
    return round(sum(PREFERENCE_REWARD[option] * p for option, p in probabilities.items()), 12)


def compeer_reward(
    verdicts: list[bool | None] | None,
    preference: Preference | bool | None,
    format_complete: bool,
    policy: UnparseablePolicy = UnparseablePolicy.ZERO,
    *,
    scoring: Scoring = "discrete",
    p_correct: Sequence[float | None] | None = None,
    preference_probabilities: Mapping[Preference, float] | None = None,
) -> RewardBreakdown:
    """Combine verdicts into the reward.

    Args:
        verdicts: per step True/False, None when unparseable; None for ``orm`` (no steps judged).
        preference: the parsed option, None when unparseable, or False when not judged (``prm``).
        format_complete: the candidate parser's completeness.
        policy: how an unparseable judgment counts.
        scoring: ``discrete`` (COMPEER's +1/-1) or ``expected`` (each +1/-1 of a read judgment replaced
            by its expectation where the judge gave probabilities; the discrete value where it did not).
        p_correct: per step, the judge's probability that it is correct (None where it has none).
        preference_probabilities: the judge's probability of each option, when it has them.

    Returns:
        The reward's components.
    """
    missing = _unparsed_value(policy)
    expected = scoring == "expected"
    unparsed = without = 0
    steps: list[float] = []
    probabilities = list(p_correct or [])
    for i, verdict in enumerate(verdicts or []):
        p = probabilities[i] if i < len(probabilities) else None
        if verdict is None:
            unparsed += 1
            steps.append(missing)
        elif expected and p is not None:
            steps.append(expected_step(p))
        else:
            without += expected
            steps.append(1 if verdict else -1)
    pref: float | None
    if preference is False:
        pref = None
    elif preference is None or preference is True:
        unparsed += 1
        pref = missing
    elif expected and preference_probabilities is not None:
        pref = expected_preference(preference_probabilities)
    else:
        without += expected
        pref = PREFERENCE_REWARD[preference]
    return RewardBreakdown(tuple(steps), pref, 1 if format_complete else -1, unparsed, without)
