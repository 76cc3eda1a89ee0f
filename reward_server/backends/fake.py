"""A deterministic judge for tests, steered by markers in the candidate's text.

By default every step is judged correct and the replies almost equally good. A candidate containing
``[[judge:false]]`` gets every step judged incorrect and the reference preferred; ``[[judge:garbage]]``
gets judgments no parser can read; ``[[judge:error]]`` fails alone; ``[[judge:crash]]`` fails its
whole batch. ``dead = True`` simulates a dead engine: every batch fails and ``healthy()`` is False.
Every call is recorded in ``batches`` so tests can see how work was batched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from reward_server.backends.base import BackendDeadError, BackendError, JudgeReply
from services.core.judge_prompts import JudgeTask, JudgeTurn
from services.core.judgments import read_answer


class FakeJudge:
    """The ``fake`` backend."""

    name = "fake"
    max_concurrent_batches = 1

    def __init__(self, model: str = "fake-judge", max_batch_size: int = 32, delay_s: float = 0.0) -> None:
        self.model = model
        self.max_batch_size = max_batch_size
        self.delay_s = delay_s
        self.batches: list[int] = []
        self.started = False
        self.dead = False

    async def start(self) -> None:
        """Nothing to load."""
        self.started = True

    async def close(self) -> None:
        """Nothing to release."""
        self.started = False

    def healthy(self) -> bool:
        """False while ``dead`` is set."""
        return not self.dead

    @staticmethod
    def _answer(task: JudgeTask, turn: JudgeTurn, text: str) -> str:
        if "[[judge:garbage]]" in text:
            return "Hmm, hard to say."
        negative = "[[judge:false]]" in text
        if turn.kind == "step":
            verdict = "False" if negative else "True"
            return f"The fake judge read step {turn.step}.\nVerdict: {verdict}"
        return f"The fake judge compared the replies.\nPreference: {'A' if negative else 'C'}"

    async def judge(self, tasks: Sequence[JudgeTask]) -> list[JudgeReply]:
        """Answer by the markers; see the module docstring."""
        self.batches.append(len(tasks))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.dead:
            raise BackendDeadError("the fake judge's engine is dead")
        replies = []
        for task in tasks:
            text = task.candidate.response or ""
            text += " ".join(step.text for step in task.candidate.steps.values())
            if "[[judge:crash]]" in text:
                raise BackendError("the fake judge crashed on purpose")
            if "[[judge:error]]" in text:
                replies.append(JudgeReply.failed("the fake judge failed this item on purpose"))
                continue
            # It writes as a generative judge would, so its answers are read as a generative judge's are.
            verdicts = [read_answer(turn.kind, self._answer(task, turn, text)) for turn in task.turns]
            replies.append(JudgeReply(verdicts=verdicts, prompt_tokens=sum(len(t.prompt.split()) for t in task.turns)))
        return replies
