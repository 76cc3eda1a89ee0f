"""Dual-order preference judging: ask with the reference first, then with the candidate first.

LLM judges favour a position (often the first reply shown). Asking twice with the replies swapped and
combining the answers cancels that bias. The rule, applied to the swapped answer read back in the
original order (its "first is better" means the candidate is better, so it counts as ``second``):

1. both orders give the same option: that option;
2. they differ but give the candidate the same reward (``second``/``equal`` both +1,
   ``first``/``neither`` both -1): the reference-first order's option;
3. they give opposite rewards: ``equal``. A preference that flips with the order is the judge's
   position talking, not the replies, and counts as a tie, as in MT-Bench (Zheng et al., 2023);
   with ``first`` one way and ``second`` the other this is exactly position bias;
4. one order cannot be read: the other's option; neither can: no option (``parse_error``).

The combined judgment is structured (its option is never read back from text); its text holds both
rationales, the reason for the combination and the ``Preference:`` line, and appears in
``judgments.raw``. When both orders carry the judge's probabilities, the combined probabilities are
their average, the swapped order's read back in the original order (its ``first`` is ``second``); when
either lacks them there are none. The option still follows the rule above, not the averaged
probabilities: rule 3 calls a flipping preference a tie even where the average leans one way.

>>> from services.core.judgments import parse_preference
>>> ref_first = parse_preference("Ref is warmer.\\nPreference: A")
>>> combined = combine_dual_order(ref_first, parse_preference("The first one is warmer.\\nPreference: A"))
>>> combined.preference, combined.text.splitlines()[-1]
('equal', 'Preference: C')
"""

from __future__ import annotations

from collections.abc import Mapping

from services.core.judgments import PREFERENCE_OPTIONS, PreferenceJudgment
from services.core.rewards import PREFERENCE_REWARD
from services.core.types import Preference

#: What an option of the swapped order means in the original order.
SWAPPED: dict[Preference, Preference] = {"first": "second", "second": "first", "equal": "equal", "neither": "neither"}
_LETTERS: dict[Preference, str] = {option: letter for letter, option in PREFERENCE_OPTIONS.items()}


def combine_options(original: Preference | None, swapped: Preference | None) -> tuple[Preference | None, str]:
    """Combine the two orders' options (the swapped one as the judge wrote it).

    Args:
        original: the option read with the reference first; None if unreadable.
        swapped: the option read with the candidate first; None if unreadable.

    Returns:
        The combined option (None when neither order was read) and why, in words.
    """
    back = SWAPPED[swapped] if swapped is not None else None
    if original is None and back is None:
        return None, "neither order of the replies gave a readable preference"
    if original is None or back is None:
        unread = "reference-first" if original is None else "candidate-first"
        return original or back, f"the {unread} order could not be read, so the other order decides"
    if original == back:
        return original, "both orders agree"
    if PREFERENCE_REWARD[original] == PREFERENCE_REWARD[back]:
        return original, "the orders differ but reward the candidate alike; the reference-first order's option is kept"
    return "equal", "the preference flips with the order of the replies (position bias), so it counts as a tie"


def combine_probabilities(
    original: Mapping[Preference, float] | None, swapped: Mapping[Preference, float] | None
) -> dict[Preference, float] | None:
    """The average of the two orders' probabilities, the swapped one read back in the original order.

    Args:
        original: the probability of each option with the reference first; None if the judge gave none.
        swapped: the same with the candidate first, as the judge gave them (its ``first`` is the candidate).

    Returns:
        Each option's combined probability (an option missing from an order counts 0 there), or
        None when either order has none.

    >>> combine_probabilities({"first": 0.5, "second": 0.5}, {"first": 0.75, "second": 0.25})
    {'first': 0.375, 'second': 0.625, 'equal': 0.0, 'neither': 0.0}
    """
    if original is None or swapped is None:
        return None
    return {option: (original.get(option, 0.0) + swapped.get(SWAPPED[option], 0.0)) / 2 for option in SWAPPED}


def _one_line(judgment: PreferenceJudgment) -> str:
    return " ".join(judgment.rationale.split()) or "(no rationale)"


def combine_dual_order(original: PreferenceJudgment, swapped: PreferenceJudgment) -> PreferenceJudgment:
    """One preference judgment from the judge's answers to both orders.

    Args:
        original: the judgment with the reference shown first.
        swapped: the judgment with the candidate shown first (its options as the judge wrote them).

    Returns:
        The combined option, with a text of both rationales and the reason for the combination, ending
        in ``Preference: X``, and the average of both orders' probabilities when both have them
        (:func:`combine_probabilities`); when neither order could be read, the original judgment
        unchanged.
    """
    option, why = combine_options(original.preference, swapped.preference)
    if option is None:
        return original
    read_back = SWAPPED[swapped.preference] if swapped.preference is not None else None
    text = (
        f"Reference first: {_one_line(original)} [{original.preference or 'unreadable'}]\n"
        f"Candidate first: {_one_line(swapped)} [{read_back or 'unreadable'}, in the reference-first order]\n"
        f"Combined: {why}.\nPreference: {_LETTERS[option]}"
    )
    probabilities = combine_probabilities(original.probabilities, swapped.probabilities)
    return PreferenceJudgment(text=text, preference=option, status="ok", probabilities=probabilities)
