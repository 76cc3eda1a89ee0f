"""Variants of the judge conversation: structured-output regexes, the swapped preference, single pass."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.candidate import parse_candidate
from services.core.judge_prompts import (
    JudgeTask,
    build_task,
    judge_messages,
    judgment_regex,
    judgment_token_budget,
    single_pass_messages,
    single_pass_regex,
    split_single_pass,
    swap_preference,
)
from services.core.outcome import judge_outcome, read_answers
from services.core.schemas import SCHEMAS
from services.core.types import DialogueMessage, JudgeMode, TurnKind

FAST = settings(max_examples=200, deadline=None)
COMPEER = SCHEMAS["compeer"]
HISTORY = [DialogueMessage("seeker", "I might lose my job."), DialogueMessage("supporter", "That sounds hard.")]


def task_for(mode: JudgeMode) -> JudgeTask:
    reference = None if mode == "prm" else "Have you talked to HR?"
    return build_task(COMPEER, mode, HISTORY, parse_candidate(COMPEER.example, COMPEER), reference)


@pytest.mark.parametrize(
    ("kind", "text", "matches"),
    [
        ("step", "Fits the dialogue.\nVerdict: True", True),  # the format
        ("step", "Fits.\nVerdict: Maybe", False),  # not a verdict
        ("step", "Two\nlines\nVerdict: True", False),  # the rationale is one line
        ("step", "x" * 41 + "\nVerdict: False", False),  # longer than the 40 allowed here
        ("preference", "Both warm.\nPreference: C", True),  # the format
        ("preference", "Both warm.\nPreference: E", False),  # no option E
        ("preference", "\nPreference: A", False),  # a rationale is required
    ],
)
def test_judgment_regex(kind: TurnKind, text: str, matches: bool) -> None:
    assert bool(re.fullmatch(judgment_regex(kind, 40), text)) is matches


@FAST
@given(
    # Any character a model can write (surrogates are not UTF-8), so 4-byte ones too.
    rationale=st.text(st.characters(exclude_characters="\n", exclude_categories=("Cs",)), min_size=1, max_size=50),
    verdict=st.booleans(),
)
def test_token_budget_covers_the_longest_utf8_judgment(rationale: str, verdict: bool) -> None:
    """Every token writes at least one byte, so the byte length bounds the token count."""
    text = f"{rationale}\nVerdict: {verdict}"
    assert re.fullmatch(judgment_regex("step", 50), text)
    assert len(text.encode()) + 1 <= judgment_token_budget(50)  # + 1: the end-of-sequence token


@pytest.mark.parametrize("mode", ["unified", "orm"])
def test_swapped_preference_keeps_the_prefix_and_swaps_the_replies(mode: JudgeMode) -> None:
    task = task_for(mode)
    swapped = swap_preference(task)
    answers = ["It fits.\nVerdict: True"] * (len(task.turns) - 1)
    original, other = judge_messages(task, answers), judge_messages(swapped, answers)
    assert original[:-1] == other[:-1]  # the conversation so far is shared
    first = original[-1]["content"]
    second = other[-1]["content"]
    assert "First reply (reference): Have you talked to HR?" in first
    assert "First reply (candidate):" in second and "Second reply (reference): Have you talked to HR?" in second
    assert ("Dialogue so far:" in second) is (mode == "orm")  # the dialogue heads the first turn only


def test_prm_has_no_preference_to_swap() -> None:
    with pytest.raises(ValueError, match="preference"):
        swap_preference(task_for("prm"))


@pytest.mark.parametrize("mode", ["unified", "prm", "orm"])
def test_single_pass_asks_every_turn_once(mode: JudgeMode) -> None:
    task = task_for(mode)
    system, user = single_pass_messages(task)
    assert system["role"] == "system" and user["role"] == "user"
    assert user["content"].count("Dialogue so far:") == 1
    for i, turn in enumerate(task.turns, 1):
        assert f"Question {i}.\n{turn.prompt}" in user["content"]


@pytest.mark.parametrize("mode", ["unified", "prm", "orm"])
def test_single_pass_answers_matching_the_regex_split_into_parseable_turns(mode: JudgeMode) -> None:
    task = task_for(mode)
    lines = [
        f"Answer {i}: Reason {i}.\n" + ("Verdict: False" if turn.kind == "step" else "Preference: B")
        for i, turn in enumerate(task.turns, 1)
    ]
    text = "\n".join(lines)
    assert re.fullmatch(single_pass_regex(task, 40), text)
    answers = split_single_pass(task, text)
    assert len(answers) == len(task.turns)
    done = judge_outcome(task, read_answers(task, answers))
    assert done.status == "ok"
    assert all(s.verdict is False for s in done.steps)
    assert done.preference is None or done.preference.preference == "second"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["", "", "", ""]),  # nothing written
        ("Answer 2: b\nVerdict: True", ["", "b\nVerdict: True", "", ""]),  # only the second
        ("Answer 1: a\nAnswer 1: again\nVerdict: True", ["a", "", "", ""]),  # a repeated number: the first counts
        ("Answer 9: x\nVerdict: True", ["", "", "", ""]),  # no such question
        ("Answer 99999999999999: x", ["", "", "", ""]),  # absurd numbers are not read
    ],
)
def test_split_single_pass_of_free_text(text: str, expected: list[str]) -> None:
    assert split_single_pass(task_for("unified"), text) == expected


@FAST
@given(st.text(max_size=400))
def test_split_single_pass_never_crashes(text: str) -> None:
    assert len(split_single_pass(task_for("unified"), text)) == 4
