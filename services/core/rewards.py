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

from dataclasses import dataclass
from enum import StrEnum

from services.core.types import Preference

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
        steps: one value per step of the schema in order (+1, -1, or the unparseable value); empty
            in ``orm``.
        preference: +1/-1, the unparseable value, or None in ``prm``.
        format: +1 or -1.
        unparsed: how many judgments could not be read.
    """

    steps: tuple[int, ...]
    preference: int | None
    format: int
    unparsed: int

    @property
    def reward(self) -> int:
        """The sum of all components."""
        return sum(self.steps) + (self.preference or 0) + self.format


def _unparsed_value(policy: UnparseablePolicy) -> int:
    return {UnparseablePolicy.ZERO: 0, UnparseablePolicy.NEGATIVE: -1, UnparseablePolicy.POSITIVE: 1}[policy]


def compeer_reward(
    verdicts: list[bool | None] | None,
    preference: Preference | bool | None,
    format_complete: bool,
    policy: UnparseablePolicy = UnparseablePolicy.ZERO,
) -> RewardBreakdown:
    """Combine verdicts into the reward.

    Args:
        verdicts: per step True/False, None when unparseable; None for ``orm`` (no steps judged).
        preference: the parsed option, None when unparseable, or False when not judged (``prm``).
        format_complete: the candidate parser's completeness.
        policy: how an unparseable judgment counts.

    Returns:
        The reward's components.
    """
    missing = _unparsed_value(policy)
    unparsed = 0
    steps: list[int] = []
    for verdict in verdicts or []:
        if verdict is None:
            unparsed += 1
            steps.append(missing)
        else:
            steps.append(1 if verdict else -1)
    pref: int | None
    if preference is False:
        pref = None
    elif preference is None or preference is True:
        unparsed += 1
        pref = missing
    else:
        pref = PREFERENCE_REWARD[preference]
    return RewardBreakdown(tuple(steps), pref, 1 if format_complete else -1, unparsed)
