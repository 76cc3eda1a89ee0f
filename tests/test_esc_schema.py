"""The reasoning schemas as data, the field value normaliser and the canonical renderer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.schemas import (
    EMOTIONS,
    INTENSITIES,
    SCHEMAS,
    SENTIMENTS,
    STAGES,
    STRATEGIES,
    STRATEGY_STAGE,
    normalize_value,
    render_candidate,
)

FAST = settings(max_examples=200, deadline=None)
ALLOWED = {
    "stage": STAGES,
    "sentiment": SENTIMENTS,
    "emotion": EMOTIONS,
    "intensity": INTENSITIES,
    "strategy": STRATEGIES,
}


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("stage", "exploration", "exploration"),  # canonical value
        ("stage", "  Exploration. ", "exploration"),  # case, spaces, trailing period
        ("stage", "[Comforting]", "comforting"),  # brackets
        ("stage", "**action**", "action"),  # markdown bold
        ("stage", "explore", "exploration"),  # verb alias
        ("stage", "comfort", "comforting"),  # short alias
        ("stage", "Exploration stage", "exploration"),  # value followed by a word
        ("stage", "exploration - we need more facts", "exploration"),  # value then dash explanation
        ("stage", "exploration, we need more facts", "exploration"),  # value then comma explanation
        ("stage", "explorations", None),  # not a word boundary after the alias
        ("stage", "closing", None),  # not a stage
        ("stage", "", None),  # empty
        ("stage", "**", None),  # decoration only
        ("sentiment", "Negative", "negative"),  # case
        ("sentiment", "neutral.", "neutral"),  # trailing period
        ("sentiment", "negative, with some hope", "negative"),  # first word before a comma
        ("sentiment", "mixed", None),  # not a sentiment
        ("emotion", "anxiety", "anxiety"),  # canonical value
        ("emotion", "`Sadness`", "sadness"),  # code span and case
        ("emotion", "anxiety and fear", "anxiety"),  # first named emotion wins
        ("emotion", "anxiety, fear", "anxiety"),  # first named emotion before a comma
        ("emotion", "anxiety/fear", "anxiety"),  # first named emotion before a slash
        ("emotion", "joy", None),  # not an ESConv emotion
        ("emotion", "anxious", None),  # adjective, not the emotion type
        ("emotion", "fearful", None),  # prefix of a word is not the emotion
        ("intensity", "4", "4"),  # digit
        ("intensity", "4/5", "4"),  # out of five with a slash
        ("intensity", "4 / 5", "4"),  # spaced slash
        ("intensity", "2 out of 5", "2"),  # words
        ("intensity", "3 of 5", "3"),  # short words
        ("intensity", "5 (very strong)", "5"),  # digit then explanation
        ("intensity", "High", "4"),  # word scale
        ("intensity", "very high", "5"),  # two-word scale
        ("intensity", "mild", "2"),  # word alias
        ("intensity", "moderate.", "3"),  # word with trailing period
        ("intensity", "4/10", None),  # another scale is not read as four of five
        ("intensity", "3 out of 10", None),  # another scale in words
        ("intensity", "0", None),  # below the scale
        ("intensity", "6", None),  # above the scale
        ("intensity", "45", None),  # a number, not a digit
        ("intensity", "-4", None),  # negative
        ("intensity", "unbearable", None),  # unknown word
        ("strategy", "Question", "Question"),  # canonical value
        ("strategy", "**Reflection of Feelings**", "Reflection of feelings"),  # bold and case
        ("strategy", "questions", "Question"),  # plural alias
        ("strategy", "Restatement/Paraphrasing", "Restatement or Paraphrasing"),  # slash alias
        ("strategy", "paraphrasing", "Restatement or Paraphrasing"),  # half alias
        ("strategy", "Self disclosure", "Self-disclosure"),  # missing hyphen
        ("strategy", "Affirmation & Reassurance", "Affirmation and Reassurance"),  # ampersand
        ("strategy", "reassurance", "Affirmation and Reassurance"),  # half alias
        ("strategy", "Providing suggestions", "Providing Suggestions"),  # case
        ("strategy", "suggestion", "Providing Suggestions"),  # singular alias
        ("strategy", "Providing information", "Information"),  # long alias
        ("strategy", "Other", "Others"),  # singular alias
        ("strategy", "Question - to learn more", "Question"),  # dash explanation
        ("strategy", "Question, to learn more", "Question"),  # comma explanation
        ("strategy", "Providing Suggestions: try a walk", "Providing Suggestions"),  # colon explanation
        ("strategy", "Reflection of feelings to show empathy", "Reflection of feelings"),  # longest alias wins
        ("strategy", "Questioning", None),  # a longer word is not the alias
        ("strategy", "Empathy", None),  # not one of the eight
        ("strategy", "", None),  # empty
        ("color", "blue", None),  # unknown field
    ],
)
def test_normalize_value(field: str, raw: str, expected: str | None) -> None:
    assert normalize_value(field, raw) == expected


@pytest.mark.parametrize(
    ("schema", "steps"),
    [
        ("compeer", ["history_analysis", "emotional_state", "support_strategy"]),  # COMPEER's three stages
        ("care", ["context", "cognition", "emotion", "support_plan"]),  # CARE's four nodes
    ],
)
def test_schema_steps_in_order(schema: str, steps: list[str]) -> None:
    assert [s.name for s in SCHEMAS[schema].steps] == steps
    assert SCHEMAS[schema].name == schema


@pytest.mark.parametrize(
    ("schema", "step", "fields"),
    [
        ("compeer", "history_analysis", ["stage"]),  # the stage is decided with the history
        ("compeer", "emotional_state", ["sentiment", "emotion", "intensity"]),  # the three emotion fields
        ("compeer", "support_strategy", ["strategy"]),  # one of ESConv's eight
        ("care", "context", []),  # free text only
        ("care", "cognition", []),  # free text only
        ("care", "emotion", ["sentiment", "emotion", "intensity"]),  # same fields as COMPEER's step 2
        ("care", "support_plan", ["strategy"]),  # one of ESConv's eight
    ],
)
def test_step_fields(schema: str, step: str, fields: list[str]) -> None:
    assert [f.name for f in SCHEMAS[schema].step(step).fields] == fields


def test_unknown_step_raises_key_error() -> None:
    with pytest.raises(KeyError):
        SCHEMAS["compeer"].step("context")


def test_every_strategy_has_a_stage_entry() -> None:
    assert set(STRATEGY_STAGE) == set(STRATEGIES)
    assert {v for v in STRATEGY_STAGE.values() if v is not None} <= set(STAGES)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ({}, "<response>\nHi.\n</response>"),  # no steps: the response alone
        (
            {"support_strategy": ("Ask.", {"strategy": "Question"})},
            "<support_strategy>\nStrategy: Question\nAsk.\n</support_strategy>\n<response>\nHi.\n</response>",
        ),  # fields first, then the text
        (
            {"history_analysis": ("  ", {"stage": "action"})},
            "<history_analysis>\nStage: action\n</history_analysis>\n<response>\nHi.\n</response>",
        ),  # blank text is left out
        (
            {"support_strategy": ("Ask.", {}), "history_analysis": ("Lost a job.", {})},
            "<history_analysis>\nLost a job.\n</history_analysis>\n"
            "<support_strategy>\nAsk.\n</support_strategy>\n<response>\nHi.\n</response>",
        ),  # the schema's order, not the dict's
    ],
)
def test_render_candidate(steps: dict[str, tuple[str, dict[str, str]]], expected: str) -> None:
    assert render_candidate(SCHEMAS["compeer"], steps, "  Hi.  ") == expected


# --- properties -----------------------------------------------------------------------------------

# Markdown, brackets and quotes may wrap a value; punctuation may only follow it.
_BEFORE = st.sampled_from(["", " ", "**", "__", "`", "[", "(", "'", '"', "#", "<"])
_AFTER = st.sampled_from(["", " ", "**", "__", "`", "]", ")", "'", '"', ">", ".", ";", ",", ":", "!"])


@FAST
@given(field=st.sampled_from([*ALLOWED, "unknown", ""]), raw=st.text(max_size=200))
def test_normalize_value_returns_an_allowed_value_or_none(field: str, raw: str) -> None:
    value = normalize_value(field, raw)
    assert value is None or value in ALLOWED[field]


@FAST
@given(
    field=st.sampled_from(sorted(ALLOWED)),
    fragments=st.lists(
        st.one_of(
            st.sampled_from([v for values in ALLOWED.values() for v in values]),
            st.sampled_from(["/", "out of", "of", "5", "10", "-", ",", ":", "very", "high", " "]),
            st.text(max_size=10),
        ),
        max_size=12,
    ),
)
def test_normalize_value_on_format_fragments(field: str, fragments: list[str]) -> None:
    value = normalize_value(field, " ".join(fragments))
    assert value is None or value in ALLOWED[field]


@FAST
@given(
    pair=st.sampled_from([(f, v) for f, values in ALLOWED.items() for v in values]),
    before=_BEFORE,
    after=_AFTER,
    upper=st.booleans(),
)
def test_normalize_value_reads_every_allowed_value_back(
    pair: tuple[str, str], before: str, after: str, upper: bool
) -> None:
    field, value = pair
    raw = f"{before}{value.upper() if upper else value}{after}"
    assert normalize_value(field, raw) == value


@FAST
@given(
    field=st.sampled_from(sorted(ALLOWED)), n=st.integers(1_000, 50_000), piece=st.sampled_from([" ", "4", "a", "/"])
)
def test_normalize_value_on_very_long_values(field: str, n: int, piece: str) -> None:
    value = normalize_value(field, piece * n)
    assert value is None or value in ALLOWED[field]
