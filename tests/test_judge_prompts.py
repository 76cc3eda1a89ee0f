"""The judge conversation: turns per mode, prompts and chat messages."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.candidate import ParsedStep, parse_candidate
from services.core.judge_prompts import (
    SYSTEM_PROMPT,
    TEMPLATE_VERSION,
    JudgeTask,
    build_task,
    judge_messages,
    render_dialogue,
    render_step,
)
from services.core.schemas import SCHEMAS, Schema
from services.core.types import DialogueMessage, JudgeMode

FAST = settings(max_examples=200, deadline=None)
COMPEER, CARE = SCHEMAS["compeer"], SCHEMAS["care"]
HISTORY = [
    DialogueMessage("seeker", "I might lose my job."),
    DialogueMessage("supporter", "That sounds hard."),
    DialogueMessage("seeker", "It is."),
]
STEPS = ["history_analysis", "emotional_state", "support_strategy"]
CARE_STEPS = ["context", "cognition", "emotion", "support_plan"]
WRITTEN = ["history_analysis", "support_strategy"]  # the steps of NO_EMOTION
_EX, _END = COMPEER.example, "</emotional_state>"
NO_EMOTION = _EX[: _EX.index("<emotional_state>")] + _EX[_EX.index(_END) + len(_END) :]


def task_for(
    schema: Schema, mode: JudgeMode, text: str | None = None, reference: str | None = "Ref reply."
) -> JudgeTask:
    candidate = parse_candidate(schema.example if text is None else text, schema)
    return build_task(schema, mode, HISTORY, candidate, reference)


@pytest.mark.parametrize(
    ("schema", "mode", "text", "kinds", "steps"),
    [
        (COMPEER, "unified", None, ["step", "step", "step", "preference"], STEPS),  # all three steps then the reply
        (COMPEER, "prm", None, ["step", "step", "step"], STEPS),  # steps only
        (COMPEER, "orm", None, ["preference"], []),  # the reply only
        (CARE, "unified", None, ["step"] * 4 + ["preference"], CARE_STEPS),  # CARE's four nodes
        (CARE, "orm", None, ["preference"], []),  # CARE, reply only
        (COMPEER, "unified", NO_EMOTION, ["step", "step", "preference"], WRITTEN),  # unwritten step not asked
        (COMPEER, "prm", NO_EMOTION, ["step", "step"], WRITTEN),  # same in prm
        (COMPEER, "unified", "just a reply", ["preference"], []),  # no steps written at all
        (COMPEER, "prm", "just a reply", [], []),  # prm with nothing to ask
    ],
)
def test_turns_per_mode(schema: Schema, mode: JudgeMode, text: str | None, kinds: list[str], steps: list[str]) -> None:
    task = task_for(schema, mode, text)
    assert [t.kind for t in task.turns] == kinds
    assert [t.step for t in task.turns if t.kind == "step"] == steps
    assert list(task.asked_steps) == steps
    assert all(t.step is None for t in task.turns if t.kind == "preference")
    assert (task.mode, task.schema, task.history) == (mode, schema, tuple(HISTORY))
    assert (task.system, task.template_version) == (SYSTEM_PROMPT, TEMPLATE_VERSION)


@pytest.mark.parametrize(
    ("mode", "reference", "raises"),
    [
        ("unified", None, True),  # unified compares with a reference
        ("orm", None, True),  # orm compares with a reference
        ("prm", None, False),  # prm does not need one
        ("unified", "", False),  # an empty reference is still a reference
    ],
)
def test_missing_reference(mode: JudgeMode, reference: str | None, raises: bool) -> None:
    candidate = parse_candidate(COMPEER.example, COMPEER)
    if raises:
        with pytest.raises(ValueError, match="reference"):
            build_task(COMPEER, mode, HISTORY, candidate, reference)
    else:
        assert build_task(COMPEER, mode, HISTORY, candidate, reference).reference == reference


@pytest.mark.parametrize("mode", ["unified", "prm", "orm"])
def test_only_the_first_turn_carries_the_dialogue(mode: JudgeMode) -> None:
    task = task_for(COMPEER, mode)
    assert task.turns[0].prompt.startswith(
        "Dialogue so far:\nSeeker: I might lose my job.\nSupporter: That sounds hard."
    )
    assert all("Dialogue so far" not in t.prompt for t in task.turns[1:])


def test_step_prompts() -> None:
    first, second, third, _ = task_for(COMPEER, "unified").turns
    assert "Reasoning step 1 of 3: Conversation history analysis." in first.prompt
    assert "Stage: exploration" in first.prompt and "short-term disability" in first.prompt
    assert "Reasoning step 2 of 3: Emotional state." in second.prompt
    assert "Sentiment: negative\nEmotion: anxiety\nIntensity: 4" in second.prompt
    assert "Strategy: Question" in third.prompt
    assert all('"Verdict: True" or "Verdict: False"' in t.prompt for t in (first, second, third))


def test_step_numbering_follows_the_schema_when_a_step_is_missing() -> None:
    turns = task_for(COMPEER, "prm", NO_EMOTION).turns
    assert "Reasoning step 3 of 3" in turns[1].prompt


def test_preference_prompt() -> None:
    prompt = task_for(COMPEER, "unified").turns[-1].prompt
    assert "First reply (reference): Ref reply." in prompt
    assert "Second reply (candidate): That sounds really stressful." in prompt
    for line in ("(A) the first is better", "(B) the second is better", "(C) both are almost equally good"):
        assert line in prompt
    assert "(D) neither is acceptable" in prompt and 'end with "Preference: "' in prompt


def test_preference_prompt_without_a_reply() -> None:
    prompt = task_for(COMPEER, "orm", "<history_analysis>Stage: action</history_analysis>").turns[0].prompt
    assert "Second reply (candidate): (the supporter wrote no reply)" in prompt


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([], "(the dialogue has not started)"),  # no dialogue yet
        ([DialogueMessage("seeker", "  Hi.  ")], "Seeker: Hi."),  # one message, stripped
        (
            [DialogueMessage("seeker", "Hi."), DialogueMessage("supporter", "Hello.")],
            "Seeker: Hi.\nSupporter: Hello.",
        ),  # both roles
        ((DialogueMessage("supporter", "Hello."),), "Supporter: Hello."),  # a tuple works as well
    ],
)
def test_render_dialogue(history: list[DialogueMessage], expected: str) -> None:
    assert render_dialogue(history) == expected


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (ParsedStep("emotional_state", "Text.", {"emotion": "anxiety"}), "Emotion: anxiety\nText."),  # fields then text
        (ParsedStep("emotional_state", "", {}, {"emotion": "joy"}), "Emotion: joy (not an allowed value)"),  # invalid
        (ParsedStep("emotional_state", "", {}), "(empty)"),  # nothing at all
        (ParsedStep("emotional_state", "Only text.", {}), "Only text."),  # no fields
    ],
)
def test_render_step(step: ParsedStep, expected: str) -> None:
    assert render_step(COMPEER.step("emotional_state"), step) == expected


@pytest.mark.parametrize("mode", ["unified", "prm", "orm"])
@pytest.mark.parametrize("answered", [0, 1, 2, 3, 4, 5])
def test_judge_messages_alternate(mode: JudgeMode, answered: int) -> None:
    task = task_for(COMPEER, mode)
    answers = [f"answer {i}" for i in range(answered)]
    messages = judge_messages(task, answers)
    done = min(answered, len(task.turns))
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    roles = [m["role"] for m in messages[1:]]
    assert roles[: 2 * done] == ["user", "assistant"] * done
    assert [m["content"] for m in messages[2 : 2 * done + 1 : 2]] == answers[:done]
    if answered < len(task.turns):
        assert messages[-1] == {"role": "user", "content": task.turns[answered].prompt}
        assert len(messages) == 2 * done + 2
    else:
        assert messages[-1]["role"] == "assistant" and len(messages) == 2 * len(task.turns) + 1


def test_each_turn_extends_the_previous_conversation() -> None:
    task = task_for(COMPEER, "unified")
    answers = ["Fine.\nVerdict: True"] * len(task.turns)
    for n in range(len(task.turns)):
        before, after = judge_messages(task, answers[:n]), judge_messages(task, answers[: n + 1])
        assert after[: len(before)] == before  # a prefix cache can reuse the whole earlier conversation


# --- properties -----------------------------------------------------------------------------------


@FAST
@given(
    text=st.text(max_size=500),
    schema=st.sampled_from([COMPEER, CARE]),
    mode=st.sampled_from(["unified", "prm", "orm"]),
    history=st.lists(
        st.builds(DialogueMessage, st.sampled_from(["seeker", "supporter"]), st.text(max_size=50)), max_size=5
    ),
    reference=st.text(max_size=50),
    answers=st.lists(st.text(max_size=30), max_size=8),
)
def test_any_candidate_builds_a_task(
    text: str, schema: Schema, mode: JudgeMode, history: list[DialogueMessage], reference: str, answers: list[str]
) -> None:
    task = build_task(schema, mode, history, parse_candidate(text, schema), reference)
    written = [s.name for s in schema.steps if s.name in task.candidate.steps]
    assert list(task.asked_steps) == ([] if mode == "orm" else written)
    assert sum(t.kind == "preference" for t in task.turns) == (0 if mode == "prm" else 1)
    messages = judge_messages(task, answers)
    assert [m["role"] for m in messages[1:3]] in (["user", "assistant"], ["user"], [])
    assert all(a["role"] != b["role"] for a, b in pairwise(messages[1:]))
