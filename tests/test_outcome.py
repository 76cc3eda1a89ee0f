"""From a judge's answers to verdicts, a preference, a reward and an honest status."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.candidate import parse_candidate
from services.core.judge_prompts import JudgeTask, build_task
from services.core.outcome import JudgeOutcome, judge_outcome, read_answers
from services.core.rewards import RewardBreakdown, UnparseablePolicy
from services.core.schemas import SCHEMAS, Schema
from services.core.types import DialogueMessage, JudgeMode

FAST = settings(max_examples=200, deadline=None)
COMPEER, CARE = SCHEMAS["compeer"], SCHEMAS["care"]
ZERO, NEG, POS = UnparseablePolicy.ZERO, UnparseablePolicy.NEGATIVE, UnparseablePolicy.POSITIVE
R = RewardBreakdown
T, F = "Fits.\nVerdict: True", "Off.\nVerdict: False"
A, B, C, D = "Preference: A", "Preference: B", "Same.\nPreference: C", "Preference: D"
_EX, _END = COMPEER.example, "</emotional_state>"
NO_EMOTION = _EX[: _EX.index("<emotional_state>")] + _EX[_EX.index(_END) + len(_END) :]


def assess(task: JudgeTask, answers: list[str], policy: UnparseablePolicy = UnparseablePolicy.ZERO) -> JudgeOutcome:
    """The outcome of a generative judge's text answers: read once, then the reward rules."""
    return judge_outcome(task, read_answers(task, answers), policy)


def task_for(mode: JudgeMode, text: str = COMPEER.example, schema: Schema = COMPEER) -> JudgeTask:
    return build_task(
        schema, mode, [DialogueMessage("seeker", "I lost my job.")], parse_candidate(text, schema), "Oh no."
    )


@pytest.mark.parametrize(
    ("mode", "text", "answers", "policy", "breakdown", "status"),
    [
        ("unified", _EX, [T, T, T, C], ZERO, R((1, 1, 1), 1, 1, 0), "ok"),  # all correct, equal: +5
        ("unified", _EX, [F, F, F, A], ZERO, R((-1, -1, -1), -1, 1, 0), "ok"),  # all wrong, reference better
        ("unified", _EX, [T, F, T, B], ZERO, R((1, -1, 1), 1, 1, 0), "ok"),  # mixed, candidate better
        ("unified", _EX, [T, T, T, D], ZERO, R((1, 1, 1), -1, 1, 0), "ok"),  # neither acceptable
        ("unified", NO_EMOTION, [T, T, B], ZERO, R((1, -1, 1), 1, -1, 0), "ok"),  # unwritten step: -1, format -1
        ("unified", "just a reply", [B], ZERO, R((-1, -1, -1), 1, -1, 0), "ok"),  # no steps: all by rule
        ("prm", _EX, [T, T, F], ZERO, R((1, 1, -1), None, 1, 0), "ok"),  # prm: no preference
        ("prm", NO_EMOTION, [T, T], ZERO, R((1, -1, 1), None, -1, 0), "ok"),  # prm with an unwritten step
        ("orm", _EX, [B], ZERO, R((), 1, 1, 0), "ok"),  # orm: the reply only
        ("orm", NO_EMOTION, [A], ZERO, R((), -1, -1, 0), "ok"),  # orm still counts the format
        ("unified", _EX, [T, "Hmm.", T, C], ZERO, R((1, 0, 1), 1, 1, 1), "parse_error"),  # unreadable step
        ("unified", _EX, [T, "Hmm.", T, C], NEG, R((1, -1, 1), 1, 1, 1), "parse_error"),  # ... negative
        ("unified", _EX, [T, "Hmm.", T, C], POS, R((1, 1, 1), 1, 1, 1), "parse_error"),  # ... positive
        ("unified", _EX, [T, T, T, "No idea."], NEG, R((1, 1, 1), -1, 1, 1), "parse_error"),  # preference
        ("unified", _EX, [T, T], ZERO, R((1, 1, 0), 0, 1, 2), "parse_error"),  # missing answers are empty
        ("unified", _EX, [], POS, R((1, 1, 1), 1, 1, 4), "parse_error"),  # no answers at all
        ("orm", _EX, [B, "extra"], ZERO, R((), 1, 1, 0), "ok"),  # answers beyond the turns are ignored
        ("unified", _EX, [T, "Right and wrong.", T, C], ZERO, R((1, 0, 1), 1, 1, 1), "parse_error"),  # ambiguous step
    ],
)
def test_assess(
    mode: JudgeMode, text: str, answers: list[str], policy: UnparseablePolicy, breakdown: RewardBreakdown, status: str
) -> None:
    assessment = assess(task_for(mode, text), answers, policy)
    assert assessment.breakdown == breakdown
    assert assessment.status == status
    assert bool(assessment.errors) is (status == "parse_error")


def test_unwritten_step_is_judged_by_rule() -> None:
    assessment = assess(task_for("unified", NO_EMOTION), [T, T, B])
    by_step = {s.step: s for s in assessment.steps}
    assert [s.step for s in assessment.steps] == ["history_analysis", "emotional_state", "support_strategy"]
    assert (by_step["emotional_state"].verdict, by_step["emotional_state"].source) == (False, "rule")
    assert by_step["emotional_state"].status == "ok"
    assert "did not write" in by_step["emotional_state"].rationale
    assert {by_step[s].source for s in ("history_analysis", "support_strategy")} == {"judge"}


def test_errors_name_what_could_not_be_parsed() -> None:
    assessment = assess(task_for("unified"), [T, "Hmm.", "It is right and wrong.", ""])
    assert assessment.errors == [
        "judgment of step 'emotional_state' could not be parsed (no_verdict)",
        "judgment of step 'support_strategy' could not be parsed (ambiguous)",
        "preference judgment could not be parsed (empty)",
    ]
    assert [s.status for s in assessment.steps] == ["ok", "no_verdict", "ambiguous"]
    assert [s.verdict for s in assessment.steps] == [True, None, None]


def test_rationales_and_preference_are_kept() -> None:
    assessment = assess(task_for("unified"), [T, F, T, C])
    assert [s.rationale for s in assessment.steps] == ["Fits.", "Off.", "Fits."]
    assert assessment.preference is not None
    assert (assessment.preference.preference, assessment.preference.rationale) == ("equal", "Same.")


@pytest.mark.parametrize(
    ("mode", "has_preference", "n_steps"),
    [
        ("unified", True, 4),  # CARE: four steps and the reply
        ("prm", False, 4),  # CARE: steps only
        ("orm", True, 0),  # CARE: reply only
    ],
)
def test_care_modes(mode: JudgeMode, has_preference: bool, n_steps: int) -> None:
    task = task_for(mode, CARE.example, CARE)
    assessment = assess(task, [T] * n_steps + ([B] if has_preference else []))
    assert len(assessment.steps) == n_steps
    assert (assessment.preference is not None) is has_preference
    assert assessment.status == "ok"
    assert assessment.breakdown.reward == n_steps + has_preference + 1


# --- properties -----------------------------------------------------------------------------------

_FRAGMENTS = [
    *(f"<{s.name}>" for schema in SCHEMAS.values() for s in schema.steps),
    *(f"</{s.name}>" for schema in SCHEMAS.values() for s in schema.steps),
    "<response>", "</response>", "Emotion: anxiety", "Stage: exploration", "Strategy: Question", "Sentiment: negative",
    "Intensity: 4", "## Step 2", "**Emotional State**", "some text", "\n",
]  # fmt: skip
_CANDIDATE = st.one_of(
    st.sampled_from([COMPEER.example, CARE.example, NO_EMOTION, ""]),
    st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map("\n".join),
    st.text(max_size=300),
)
_ANSWER = st.one_of(
    st.sampled_from([T, F, A, B, C, D, "", "Hmm.", "correct and wrong", "Verdict: True\nPreference: B"]),
    st.text(max_size=200),
)


@FAST
@given(
    text=_CANDIDATE,
    schema=st.sampled_from([COMPEER, CARE]),
    mode=st.sampled_from(["unified", "prm", "orm"]),
    answers=st.lists(_ANSWER, max_size=7),
    policy=st.sampled_from(list(UnparseablePolicy)),
)
def test_any_answers_give_an_assessment(
    text: str, schema: Schema, mode: JudgeMode, answers: list[str], policy: UnparseablePolicy
) -> None:
    task = task_for(mode, text, schema)
    assessment = assess(task, answers, policy)
    n_steps = 0 if mode == "orm" else len(schema.steps)
    assert len(assessment.steps) == len(assessment.breakdown.steps) == n_steps
    assert -(n_steps + 2) <= assessment.breakdown.reward <= n_steps + 2
    assert (assessment.status == "parse_error") is bool(assessment.errors)
    assert assessment.status in ("ok", "parse_error")
    assert (assessment.preference is None) is (mode == "prm")
    assert len(assessment.errors) == assessment.breakdown.unparsed
    assert assessment.breakdown.format == (1 if task.candidate.complete else -1)
    for step in assessment.steps:
        if step.step in task.candidate.steps:
            assert step.source == "judge"
        else:
            assert (step.source, step.verdict) == ("rule", False)


@FAST
@given(text=_CANDIDATE, schema=st.sampled_from([COMPEER, CARE]), mode=st.sampled_from(["unified", "prm", "orm"]))
def test_readable_answers_are_ok(text: str, schema: Schema, mode: JudgeMode) -> None:
    task = task_for(mode, text, schema)
    answers = [T if turn.kind == "step" else B for turn in task.turns]
    assessment = assess(task, answers)
    assert assessment.status == "ok" and assessment.errors == []
    written = len(task.asked_steps)
    unwritten = 0 if mode == "orm" else len(schema.steps) - written
    expected = written - unwritten + (mode != "prm") + (1 if task.candidate.complete else -1)
    assert assessment.breakdown.reward == expected
