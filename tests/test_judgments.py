"""The judgment parsers: a verdict per step and a four-way preference for the reply."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.judge_prompts import PREFERENCE_JUDGMENT_REGEX, STEP_JUDGMENT_REGEX
from services.core.judgments import PREFERENCE_OPTIONS, PREFERENCE_TEXT, parse_preference, parse_step_judgment
from tests.guards import finishes_within

FAST = settings(max_examples=200, deadline=None)
STATUSES = {"ok", "empty", "no_verdict", "ambiguous"}


@pytest.mark.parametrize(
    ("text", "verdict", "status"),
    [
        ("Anxiety fits.\nVerdict: True", True, "ok"),  # the requested format
        ("Anxiety does not fit.\nVerdict: False", False, "ok"),  # the requested format, negative
        ("verdict: correct", True, "ok"),  # synonym, lower case
        ("Verdict: Incorrect", False, "ok"),  # negative synonym
        ("Verdict: yes", True, "ok"),  # yes
        ("Verdict: No", False, "ok"),  # no
        ("Verdict: right.", True, "ok"),  # another synonym with a period
        ("Verdict: wrong", False, "ok"),  # another negative synonym
        ("**Verdict:** True", True, "ok"),  # bold label, colon inside
        ("**Verdict**: false", False, "ok"),  # bold label, colon outside
        ("Verdict: **True**", True, "ok"),  # bold value
        ("Verdict - True", True, "ok"),  # dash separator
        ("Verdict = False", False, "ok"),  # equals separator
        ("Verdict: (True)", True, "ok"),  # parenthesised value
        ("Verdict\uff1a True", True, "ok"),  # full-width colon
        ("Verdict:\nTrue", True, "ok"),  # value on the next line
        ("Verdict: not correct", False, "ok"),  # negated label value
        ("My verdict is true.", True, "ok"),  # the label without a separator is read as prose
        ("Verdict: True\nOn reflection the stage is off.\nVerdict: False", False, "ok"),  # last verdict wins
        ("Verdict: False\nVerdict: True", True, "ok"),  # last verdict wins, the other way
        ("Verdict: maybe\nThe step is correct.", True, "ok"),  # an unreadable label falls back to the prose
        ("The step is not correct.", False, "ok"),  # negation
        ("The step isn't correct.", False, "ok"),  # contracted negation
        ("The step wasn't correct.", False, "ok"),  # contraction with no word boundary before n't
        ("This doesn't seem right.", False, "ok"),  # contraction and a word in between
        ("This cannot be true.", False, "ok"),  # cannot
        ("It is not accurate.", False, "ok"),  # another negated synonym
        ("Not true.", False, "ok"),  # short negation
        ("The strategy is not appropriate here.", False, "ok"),  # every positive word can be negated
        ("The stage is not reasonable.", False, "ok"),  # ... reasonable
        ("This is not valid.", False, "ok"),  # ... valid
        ("The emotion is accurate.", True, "ok"),  # a bare positive word
        ("incorrect", False, "ok"),  # "correct" inside "incorrect" is not positive
        ("The step is wrong in places.\nTrue", True, "ok"),  # a bare True on the last line wins
        ("The step is right in places.\nFalse", False, "ok"),  # a bare False on the last line wins
        ("It is correct but also wrong.", None, "ambiguous"),  # both, nothing decides
        ("The stage is right; no issue.", None, "ambiguous"),  # "no" counts as negative
        ("Hmm.", None, "no_verdict"),  # no verdict word
        ("Verdict: unclear", None, "no_verdict"),  # a label with no verdict word
        ("", None, "empty"),  # nothing written
        ("  \n\t", None, "empty"),  # whitespace only
    ],
)
def test_parse_step_judgment(text: str, verdict: bool | None, status: str) -> None:
    judgment = parse_step_judgment(text)
    assert (judgment.verdict, judgment.status) == (verdict, status)
    assert judgment.text == text


@pytest.mark.parametrize(
    ("text", "rationale"),
    [
        ("Anxiety fits.\nVerdict: True", "Anxiety fits."),  # the verdict line is removed
        ("  Anxiety fits.  \n**Verdict:** True\n", "Anxiety fits."),  # bold label, surrounding space
        ("No label here.", "No label here."),  # nothing to remove
        ("", ""),  # empty
    ],
)
def test_step_rationale(text: str, rationale: str) -> None:
    assert parse_step_judgment(text).rationale == rationale


@pytest.mark.parametrize(
    ("text", "preference", "status"),
    [
        ("Both are warm.\nPreference: C", "equal", "ok"),  # the requested format
        ("Preference: A", "first", "ok"),  # reference better
        ("Preference: B", "second", "ok"),  # candidate better
        ("Preference: D", "neither", "ok"),  # neither acceptable
        ("Preference: (B)", "second", "ok"),  # parenthesised letter
        ("Preference: **C**", "equal", "ok"),  # bold letter
        ("**Preference:** D", "neither", "ok"),  # bold label
        ("Preference: Option B", "second", "ok"),  # "option" before the letter
        ("Preference: B. The second is warmer.", "second", "ok"),  # letter then a sentence
        ("preference: d", "neither", "ok"),  # a lower-case letter standing alone
        ("Preference: (a)", "first", "ok"),  # a lower-case letter in parentheses
        ("Answer: C", "equal", "ok"),  # answer label
        ("Option: D", "neither", "ok"),  # option label
        ("Choice = A", "first", "ok"),  # choice label with equals
        ("Verdict: B", "second", "ok"),  # verdict label
        ("Preference: A\nOn second thought...\nPreference: B", "second", "ok"),  # the last label wins
        ("Answer: a tough call, but the second is better.", "second", "ok"),  # the article "a" is not option A
        ("The first is better.", "first", "ok"),  # phrase
        ("The second reply is better.", "second", "ok"),  # phrase with a noun
        ("Both are almost equally good.", "equal", "ok"),  # the offered phrase
        ("They are roughly equally helpful.", "equal", "ok"),  # variant of the phrase
        ("Both replies are similar in quality.", "equal", "ok"),  # both ... similar
        ("Neither is acceptable.", "neither", "ok"),  # the offered phrase
        ("Neither reply is appropriate here.", "neither", "ok"),  # variant
        ("Both replies are poor.", "neither", "ok"),  # both ... poor
        ("The reference is better.", "first", "ok"),  # the reference is the first
        ("The candidate is better.", "second", "ok"),  # the candidate is the second
        ("The second is better than the first.", "second", "ok"),  # mentioning the other is not ambiguity
        ("The first is better. No, the second is better.", None, "ambiguous"),  # two options
        ("Neither is better; both are equally good.", None, "ambiguous"),  # neither ... good and equally good
        ("I cannot tell.", None, "no_verdict"),  # nothing
        ("Preference: Both", None, "no_verdict"),  # a label without a letter
        ("B", None, "no_verdict"),  # a bare letter is not read
        ("", None, "empty"),  # nothing written
        (" \n ", None, "empty"),  # whitespace only
    ],
)
def test_parse_preference(text: str, preference: str | None, status: str) -> None:
    judgment = parse_preference(text)
    assert (judgment.preference, judgment.status) == (preference, status)
    assert judgment.text == text


@pytest.mark.parametrize(
    ("text", "rationale"),
    [
        ("Both are warm.\nPreference: C", "Both are warm."),  # the label line is removed
        ("The second is better.", "The second is better."),  # nothing to remove
    ],
)
def test_preference_rationale(text: str, rationale: str) -> None:
    assert parse_preference(text).rationale == rationale


@pytest.mark.parametrize(("letter", "option"), list(PREFERENCE_OPTIONS.items()))
def test_every_offered_option_parses(letter: str, option: str) -> None:
    assert parse_preference(f"Reason.\nPreference: {letter}").preference == option  # by letter
    assert parse_preference(f"I think {PREFERENCE_TEXT[option]}.").preference == option  # by the offered phrase


@pytest.mark.parametrize(
    ("parser", "text"),
    [
        (parse_step_judgment, "verdict" + " " * 20_000 + "1"),  # five adjacent \s* in the verdict label
        (parse_step_judgment, "not" + " " * 20_000 + "x"),  # spaces after a negation
        (parse_preference, "answer:" + " " * 20_000 + "x"),  # spaces after a preference label
        (parse_preference, "preference" + " " * 20_000 + "x"),  # spaces and no colon
        (parse_preference, "neither " * 5_000),  # many phrase starts
    ],
)
def test_pathological_judgments_finish(parser: object, text: str) -> None:
    assert callable(parser)
    with finishes_within(10):
        parser(text)


# --- properties -----------------------------------------------------------------------------------

_FRAGMENTS = [
    "Verdict", "verdict", ":", "\uff1a", "=", "-", "**", "__", "(", ")", " ", "\n", "True", "False", "correct",
    "incorrect", "yes", "no", "not ", "n't ", "isn't", "right", "wrong", "Preference", "Answer", "Option", "A", "B",
    "C", "D", "a", "d", "the first is better", "the second is better", "both are almost equally good",
    "neither is acceptable", "reference", "candidate", ".", " " * 30, "\u2028", "\u00e9",
]  # fmt: skip
_TEXT = st.one_of(
    st.text(max_size=1_000),
    st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=10)), max_size=40).map("".join),
)


@FAST
@given(text=_TEXT)
def test_step_judgment_never_crashes(text: str) -> None:
    judgment = parse_step_judgment(text)
    assert judgment.status in STATUSES
    assert (judgment.verdict is None) is (judgment.status != "ok")
    assert isinstance(judgment.rationale, str)


@FAST
@given(text=_TEXT)
def test_preference_never_crashes(text: str) -> None:
    judgment = parse_preference(text)
    assert judgment.status in STATUSES
    assert (judgment.preference is None) is (judgment.status != "ok")
    assert judgment.preference is None or judgment.preference in PREFERENCE_TEXT
    assert isinstance(judgment.rationale, str)


@FAST
@given(piece=st.sampled_from(_FRAGMENTS), n=st.integers(500, 20_000))
def test_very_long_judgments(piece: str, n: int) -> None:
    with finishes_within(20):
        assert parse_step_judgment(piece * n).status in STATUSES
        assert parse_preference(piece * n).status in STATUSES


@FAST
@given(text=_TEXT, verdict=st.booleans())
def test_a_final_verdict_line_decides(text: str, verdict: bool) -> None:
    assert parse_step_judgment(f"{text}\nVerdict: {verdict}").verdict is verdict


@FAST
@given(text=_TEXT, letter=st.sampled_from(sorted(PREFERENCE_OPTIONS)))
def test_a_final_preference_line_decides(text: str, letter: str) -> None:
    assert parse_preference(f"{text}\nPreference: {letter}").preference == PREFERENCE_OPTIONS[letter]


@FAST
@given(
    rationale=st.text(st.characters(exclude_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), min_size=1),
    verdict=st.booleans(),
)
def test_structured_output_format_parses(rationale: str, verdict: bool) -> None:
    """What the structured-output regex lets a judge write always parses to the verdict written."""
    text = f"{rationale[:600]}\nVerdict: {verdict}"
    assert re.fullmatch(STEP_JUDGMENT_REGEX, text)
    assert parse_step_judgment(text).verdict is verdict


@FAST
@given(
    rationale=st.text(st.characters(exclude_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), min_size=1),
    letter=st.sampled_from(sorted(PREFERENCE_OPTIONS)),
)
def test_structured_preference_format_parses(rationale: str, letter: str) -> None:
    text = f"{rationale[:600]}\nPreference: {letter}"
    assert re.fullmatch(PREFERENCE_JUDGMENT_REGEX, text)
    assert parse_preference(text).preference == PREFERENCE_OPTIONS[letter]
