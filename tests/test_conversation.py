"""The turn loop shared by the generative backends, on a scripted chat completion."""

from __future__ import annotations

import asyncio

import pytest

from reward_server.backends.base import BackendError
from reward_server.backends.conversation import (
    Completion,
    JudgeSampling,
    Messages,
    TurnError,
    judge_task,
    judge_tasks,
    warm_up_task,
)
from services.core.candidate import parse_candidate
from services.core.judge_prompts import JudgeTask, build_task, judgment_regex
from services.core.outcome import judge_outcome
from services.core.schemas import SCHEMAS
from services.core.types import DialogueMessage, JudgeMode

COMPEER = SCHEMAS["compeer"]


def task_for(mode: JudgeMode = "unified", reply: str = "What happened?") -> JudgeTask:
    text = COMPEER.example.replace("</response>", f"{reply}\n</response>")
    reference = None if mode == "prm" else "Have you talked to HR?"
    return build_task(
        COMPEER, mode, [DialogueMessage("seeker", "I lost my job.")], parse_candidate(text, COMPEER), reference
    )


class Scripted:
    """Answers like a judge: True for steps, a letter for the preference; records every call."""

    def __init__(self, letter: str = "B", swapped_letter: str = "A") -> None:
        self.calls: list[tuple[Messages, str | None]] = []
        self.letter, self.swapped_letter = letter, swapped_letter

    async def __call__(self, messages: Messages, regex: str | None) -> Completion:
        self.calls.append((messages, regex))
        await asyncio.sleep(0)
        prompt = messages[-1]["content"]
        if "First reply (candidate)" in prompt:
            return Completion(f"Swapped.\nPreference: {self.swapped_letter}", 10, 3)
        if "Second reply" in prompt:
            return Completion(f"Compared.\nPreference: {self.letter}", 10, 3)
        return Completion("Fits.\nVerdict: True", 10, 3)


async def test_each_turn_extends_the_previous_one() -> None:
    complete = Scripted()
    reply = await judge_task(complete, task_for(), JudgeSampling())
    assert len(complete.calls) == 4 and len(reply.raw) == 4
    for (before, _), (after, _) in zip(complete.calls, complete.calls[1:], strict=False):
        assert after[: len(before)] == before  # the whole earlier prompt is the prefix of the next
        assert after[len(before)]["role"] == "assistant"
    assert (reply.prompt_tokens, reply.completion_tokens) == (40, 12)
    assert judge_outcome(task_for(), reply.verdicts).breakdown.reward == 5


@pytest.mark.parametrize(
    ("structured", "regexes"),
    [
        (True, [judgment_regex("step", 80)] * 3 + [judgment_regex("preference", 80)]),  # one regex per turn kind
        (False, [None] * 4),  # free-form judges
    ],
)
async def test_regex_per_turn(structured: bool, regexes: list[str | None]) -> None:
    complete = Scripted()
    await judge_task(complete, task_for(), JudgeSampling(structured_outputs=structured, rationale_max_chars=80))
    assert [regex for _, regex in complete.calls] == regexes


@pytest.mark.parametrize(
    ("letter", "swapped", "option"),
    [
        ("B", "A", "second"),  # candidate better in both orders
        ("A", "A", "equal"),  # the first position both times: a tie
        ("A", "B", "first"),  # reference better in both orders
    ],
)
async def test_dual_order_asks_both_orders_from_the_same_prefix(letter: str, swapped: str, option: str) -> None:
    complete = Scripted(letter, swapped)
    task = task_for()
    reply = await judge_task(complete, task, JudgeSampling(dual_order=True))
    assert len(complete.calls) == 5 and len(reply.raw) == 4
    original, other = complete.calls[3][0], complete.calls[4][0]
    assert original[:-1] == other[:-1] and original[-1] != other[-1]
    done = judge_outcome(task, reply.verdicts)
    assert done.preference is not None and done.preference.preference == option
    assert reply.prompt_tokens == 50  # both orders count


async def test_a_failed_turn_fails_its_task_alone() -> None:
    scripted = Scripted()

    async def complete(messages: Messages, regex: str | None) -> Completion:
        if any("doomed" in m["content"] for m in messages):
            raise TurnError("the server said 400")
        return await scripted(messages, regex)

    replies = await judge_tasks(complete, [task_for(), task_for(reply="doomed"), task_for("orm")], JudgeSampling())
    assert [r.error for r in replies] == [None, "the server said 400", None]
    assert replies[1].raw == [] and len(replies[2].raw) == 1


async def test_a_dead_backend_fails_the_batch() -> None:
    async def complete(messages: Messages, regex: str | None) -> Completion:
        raise BackendError("engine died")

    with pytest.raises(BackendError, match="engine died"):
        await judge_tasks(complete, [task_for(), task_for()], JudgeSampling())


async def test_conversations_of_a_batch_run_concurrently() -> None:
    """All first turns are in flight before any answer comes back (the engine sees them together)."""
    waiting = 0
    everyone = asyncio.Event()

    async def complete(messages: Messages, regex: str | None) -> Completion:
        nonlocal waiting
        waiting += 1
        if waiting == 6:
            everyone.set()
        await asyncio.wait_for(everyone.wait(), timeout=5)
        return Completion("Fits.\nVerdict: True")

    replies = await judge_tasks(complete, [task_for("prm") for _ in range(6)], JudgeSampling())
    assert all(len(r.raw) == 3 for r in replies)


def test_warm_up_task_asks_steps_and_the_preference() -> None:
    assert [t.kind for t in warm_up_task().turns] == ["step", "step", "step", "preference"]
