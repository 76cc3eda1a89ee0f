"""Dual-order preference judging: the combination rule as a table, combined texts always parse, and the
two orders' probabilities average (the swapped one read back in the original order)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.dual_order import SWAPPED, combine_dual_order, combine_options, combine_probabilities
from services.core.judgments import Preference, parse_preference
from services.core.rewards import PREFERENCE_REWARD, expected_preference

FAST = settings(max_examples=300, deadline=None)
LETTER = {"first": "A", "second": "B", "equal": "C", "neither": "D"}


@pytest.mark.parametrize(
    ("original", "swapped", "combined"),
    [
        ("second", "first", "second"),  # both orders: the candidate is better
        ("first", "second", "first"),  # both orders: the reference is better
        ("equal", "equal", "equal"),  # both: as good
        ("neither", "neither", "neither"),  # both: neither acceptable
        ("first", "first", "equal"),  # the first position wins both times: position bias, a tie
        ("second", "second", "equal"),  # the second position wins both times: a tie
        ("second", "equal", "second"),  # differ, both +1: the reference-first order's option
        ("equal", "first", "equal"),  # differ, both +1 (swapped "first" is the candidate): kept
        ("first", "neither", "first"),  # differ, both -1: kept
        ("neither", "second", "neither"),  # differ, both -1 (swapped "second" is the reference): kept
        ("equal", "neither", "equal"),  # +1 one way, -1 the other: a tie
        ("neither", "first", "equal"),  # -1 one way (neither), +1 the other (candidate better): a tie
        ("first", "equal", "equal"),  # -1 one way, +1 the other: a tie
        ("second", None, "second"),  # the swapped order unreadable: the original decides
        (None, "first", "second"),  # the original unreadable: the swapped one, read back
        (None, None, None),  # nothing readable
    ],
)
def test_combination_rule(original: Preference | None, swapped: Preference | None, combined: Preference | None) -> None:
    option, why = combine_options(original, swapped)
    assert option == combined
    assert why


def combined_text(original: str, swapped: str) -> str:
    """The combined judgment's text for two answers; its option must be what the text reads back as."""
    combined = combine_dual_order(parse_preference(original), parse_preference(swapped))
    assert parse_preference(combined.text).preference == combined.preference
    return combined.text


def test_a_judge_that_always_picks_one_position_gets_ties() -> None:
    for letter in "AB":
        text = combined_text(f"One.\nPreference: {letter}", f"Two.\nPreference: {letter}")
        assert parse_preference(text).preference == "equal"
        assert "position bias" in text


def test_combined_text_shows_both_rationales_and_reads_back() -> None:
    text = combined_text("The reference asks more.\nPreference: A", "The second asks more.\nPreference: B")
    assert parse_preference(text).preference == "first"
    assert "The reference asks more." in text and "The second asks more." in text
    assert text.splitlines()[-1] == "Preference: A"


def test_unreadable_in_both_orders_stays_unreadable() -> None:
    text = combined_text("hmm", "no idea")
    assert text == "hmm"
    assert parse_preference(text).preference is None


def test_swapping_twice_is_the_identity_and_keeps_rewards_opposite() -> None:
    for option, back in SWAPPED.items():
        assert SWAPPED[back] == option
        if option in ("first", "second"):
            assert PREFERENCE_REWARD[back] == -PREFERENCE_REWARD[option]


@FAST
@given(original=st.text(max_size=300), swapped=st.text(max_size=300))
def test_any_two_answers_combine_to_what_the_rule_says(original: str, swapped: str) -> None:
    expected, _ = combine_options(parse_preference(original).preference, parse_preference(swapped).preference)
    assert parse_preference(combined_text(original, swapped)).preference == expected


@FAST
@given(
    a=st.sampled_from(sorted(LETTER)),
    b=st.sampled_from(sorted(LETTER)),
    rationale=st.text(st.characters(exclude_characters="\n"), min_size=1, max_size=200),
)
def test_structured_answers_always_combine(a: Preference, b: Preference, rationale: str) -> None:
    text = combined_text(f"{rationale}\nPreference: {LETTER[a]}", f"{rationale}\nPreference: {LETTER[b]}")
    assert parse_preference(text).preference == combine_options(a, b)[0]


def dist(first: float, second: float, equal: float, neither: float) -> dict[Preference, float]:
    return {"first": first, "second": second, "equal": equal, "neither": neither}


@pytest.mark.parametrize(
    ("original", "swapped", "combined"),
    [
        (dist(0.1, 0.7, 0.1, 0.1), dist(0.7, 0.1, 0.1, 0.1), dist(0.1, 0.7, 0.1, 0.1)),  # consistent: unchanged
        (dist(0.8, 0.2, 0, 0), dist(0.8, 0.2, 0, 0), dist(0.5, 0.5, 0, 0)),  # pure position bias: a coin
        (dist(0, 0, 1, 0), dist(0, 0, 0, 1), dist(0, 0, 0.5, 0.5)),  # equal and neither keep their names
        (dist(0.2, 0.4, 0.4, 0), {"first": 1.0}, dist(0.1, 0.7, 0.2, 0)),  # a missing option counts 0
        (dist(0.25, 0.25, 0.25, 0.25), None, None),  # the swapped order gave none
        (None, dist(0.25, 0.25, 0.25, 0.25), None),  # the original order gave none
    ],
)
def test_probabilities_average_over_both_orders(
    original: dict[Preference, float] | None,
    swapped: dict[Preference, float] | None,
    combined: dict[Preference, float] | None,
) -> None:
    got = combine_probabilities(original, swapped)
    assert got == (None if combined is None else pytest.approx(combined))


def test_the_combined_judgment_carries_the_average_and_keeps_the_rule() -> None:
    original = replace(parse_preference("Warmer.\nPreference: B"), probabilities=dist(0.2, 0.6, 0.1, 0.1))
    swapped = replace(parse_preference("The first.\nPreference: A"), probabilities=dist(0.5, 0.3, 0.1, 0.1))
    combined = combine_dual_order(original, swapped)
    assert combined.preference == "second"  # both orders: the candidate is better
    assert combined.probabilities == pytest.approx(dist(0.25, 0.55, 0.1, 0.1))
    assert combine_dual_order(original, replace(swapped, probabilities=None)).probabilities is None


def test_a_flipping_preference_is_a_tie_whatever_the_average_says() -> None:
    original = replace(parse_preference("Ref.\nPreference: A"), probabilities=dist(0.7, 0.3, 0, 0))
    swapped = replace(parse_preference("Cand.\nPreference: A"), probabilities=dist(0.6, 0.4, 0, 0))
    combined = combine_dual_order(original, swapped)
    assert combined.preference == "equal"  # the first position won both times: the rule's tie, unchanged
    assert combined.probabilities == pytest.approx(dist(0.55, 0.45, 0, 0))  # the average leans to the reference


distribution = (
    st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4)
    .filter(lambda w: sum(w) > 0.01)
    .map(lambda w: dist(*(x / sum(w) for x in w)))
)


@FAST
@given(
    a=st.sampled_from(sorted(LETTER)),
    b=st.sampled_from(sorted(LETTER)),
    p=distribution,
    q=distribution,
)
def test_the_expected_preference_of_the_average_is_the_average_of_both_orders(
    a: Preference, b: Preference, p: dict[Preference, float], q: dict[Preference, float]
) -> None:
    original = replace(parse_preference(f"One.\nPreference: {LETTER[a]}"), probabilities=p)
    swapped = replace(parse_preference(f"Two.\nPreference: {LETTER[b]}"), probabilities=q)
    combined = combine_dual_order(original, swapped)
    assert combined.preference == combine_options(a, b)[0]
    assert combined.probabilities is not None and sum(combined.probabilities.values()) == pytest.approx(1.0)
    read_back = {SWAPPED[option]: value for option, value in q.items()}
    average = (expected_preference(p) + expected_preference(read_back)) / 2
    assert expected_preference(combined.probabilities) == pytest.approx(average, abs=1e-9)
