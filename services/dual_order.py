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

The combined answer is a judgment text like any other (both rationales, then ``Preference:``), so it
goes through the same parser and appears in ``judgments.raw``.

>>> text = combine_dual_order("Ref is warmer.\\nPreference: A", "The first one is warmer.\\nPreference: A")
>>> text.splitlines()[-1]
'Preference: C'
"""

from __future__ import annotations

from services.judgments import PREFERENCE_OPTIONS, Preference, PreferenceJudgment, parse_preference
from services.rewards import PREFERENCE_REWARD

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


def _one_line(judgment: PreferenceJudgment) -> str:
    return " ".join(judgment.rationale.split()) or "(no rationale)"


def combine_dual_order(original: str, swapped: str) -> str:
    """One judgment text from the answers to both orders, ending in the combined ``Preference:`` line.

    Args:
        original: the judge's answer with the reference shown first.
        swapped: its answer with the candidate shown first.

    Returns:
        Both rationales and the reason for the combination, then ``Preference: X``; when neither order
        could be read, the original answer unchanged (it parses to no option, as it did alone).
    """
    first, second = parse_preference(original), parse_preference(swapped)
    option, why = combine_options(first.preference, second.preference)
    if option is None:
        return original
    read_back = SWAPPED[second.preference] if second.preference is not None else None
    return (
        f"Reference first: {_one_line(first)} [{first.preference or 'unreadable'}]\n"
        f"Candidate first: {_one_line(second)} [{read_back or 'unreadable'}, in the reference-first order]\n"
        f"Combined: {why}.\nPreference: {_LETTERS[option]}"
    )
