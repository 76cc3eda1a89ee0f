"""The judge conversation as generative backends drive it (shared by ``vllm`` and ``openai``).

One conversation per candidate: the system prompt, then each turn of the
:class:`~services.core.judge_prompts.JudgeTask` as a user message, the judge's answer appended before the
next turn (:func:`~services.core.judge_prompts.judge_messages`). Every turn's prompt extends the previous
one, so an engine with prefix caching computes the dialogue once per candidate. The candidates of a
batch run as concurrent coroutines, so the engine (or the server) batches their turns continuously.

A backend only supplies a :data:`Complete` function (messages and an optional regex in, one
:class:`Completion` out); the turn loop, dual-order preference judging, token counts and per-task
failures live here. A completion may carry the top log-probabilities of its last tokens (asked for
under structured outputs only, see :meth:`JudgeSampling.logprobs`); each answer's judgment then gets
the judge's probabilities from them (:func:`~services.core.verdict_probabilities.with_probabilities`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from reward_server.backends.base import JudgeReply
from reward_server.settings import RewardSettings
from services.core.candidate import parse_candidate
from services.core.dual_order import combine_dual_order
from services.core.judge_prompts import (
    RATIONALE_MAX_CHARS,
    JudgeTask,
    build_task,
    judge_messages,
    judgment_regex,
    judgment_token_budget,
    swap_preference,
)
from services.core.judgments import Judgment, parse_preference, read_answer
from services.core.schemas import SCHEMAS
from services.core.types import DialogueMessage, TurnKind
from services.core.verdict_probabilities import TokenPosition, with_probabilities

logger = logging.getLogger(__name__)

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    """One answer of the judge, with the tokens it read (``cached_tokens`` of them from the prefix
    cache) and wrote.

    ``tokens``: the answer's generated positions (all, or a tail holding its last line), each the
    token's text and its top alternatives with their log-probabilities; None when the backend did not
    ask for them or the engine gave none.
    """

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    tokens: Sequence[TokenPosition] | None = None


class TurnError(RuntimeError):
    """One judge turn failed (a rejected or timed-out request); only its task fails (``backend_error``)."""


#: A backend's way to answer one chat: ``await complete(messages, regex)``, regex None when free-form.
#: Raises :class:`TurnError` when this request failed, :class:`BackendError` when the engine is gone.
Complete = Callable[[Messages, str | None], Awaitable[Completion]]


@dataclass(frozen=True)
class JudgeSampling:
    """How the judge is asked: sampling of each turn and the optional dual-order preference.

    Attributes:
        temperature: 0 for greedy answers (the default: a reward should not be a dice roll).
        seed: sampling seed, for reproducible answers at a temperature above 0.
        max_tokens: most tokens per turn.
        structured_outputs: constrain each answer to its turn's regex.
        rationale_max_chars: longest rationale the regex allows.
        dual_order: ask the preference in both orders and combine (:mod:`services.core.dual_order`).
        top_logprobs: alternatives per generated token whose log-probabilities are asked for under
            structured outputs, to read the judge's probability of each verdict; 0 asks for none.
    """

    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int = judgment_token_budget(RATIONALE_MAX_CHARS)
    structured_outputs: bool = True
    rationale_max_chars: int = RATIONALE_MAX_CHARS
    dual_order: bool = False
    top_logprobs: int = 5

    @classmethod
    def from_settings(cls, settings: RewardSettings) -> JudgeSampling:
        """The sampling the service's settings describe."""
        return cls(
            temperature=settings.sampling.temperature,
            seed=settings.sampling.seed,
            max_tokens=settings.sampling.judge_max_tokens(),
            structured_outputs=settings.sampling.structured_outputs,
            rationale_max_chars=settings.sampling.rationale_max_chars,
            dual_order=settings.sampling.dual_order,
            top_logprobs=settings.sampling.top_logprobs,
        )

    def regex(self, kind: TurnKind) -> str | None:
        """The regex of a turn of this kind, or None when structured outputs are off."""
        return judgment_regex(kind, self.rationale_max_chars) if self.structured_outputs else None

    def logprobs(self, regex: str | None) -> int | None:
        """Top log-probabilities per token to ask for with this regex: only under structured outputs.

        There the token that writes the verdict can only be one of the options, so its alternatives
        are the judge's distribution over them. A free-form judge may write its verdict anywhere, in
        any words, and its alternatives include words that are no option; it gets no probabilities
        (expected scoring counts its judgments' discrete values).

        >>> JudgeSampling().logprobs("Verdict: (True|False)"), JudgeSampling().logprobs(None)
        (5, None)
        """
        return self.top_logprobs if regex is not None and self.top_logprobs > 0 else None


async def judge_task(complete: Complete, task: JudgeTask, sampling: JudgeSampling) -> JudgeReply:
    """Answer every turn of one task as one conversation.

    Args:
        complete: the backend's chat completion.
        task: the task.
        sampling: how to ask.

    Returns:
        The verdicts (one per turn, each answer read once) and the tokens read, found in the prefix
        cache and written, over all turns.

    Raises:
        TurnError: a turn failed.
        BackendError: the backend cannot answer at all.
    """
    answers: list[str] = []
    verdicts: list[Judgment] = []
    done: list[Completion] = []
    for turn in task.turns:
        regex = sampling.regex(turn.kind)
        asked = [complete(judge_messages(task, answers), regex)]
        if turn.kind == "preference" and sampling.dual_order:
            # Same prefix as the original order up to this turn, so the swap costs one turn's prefill.
            asked.append(complete(judge_messages(swap_preference(task), answers), regex))
        now = await asyncio.gather(*asked)
        if len(now) == 2:
            original, swapped = (with_probabilities(parse_preference(c.text), c.tokens) for c in now)
            verdict: Judgment = combine_dual_order(original, swapped)
        else:
            verdict = with_probabilities(read_answer(turn.kind, now[0].text), now[0].tokens)
        answers.append(verdict.text)
        verdicts.append(verdict)
        done += now
    return JudgeReply(
        verdicts=verdicts,
        prompt_tokens=sum(c.prompt_tokens for c in done),
        completion_tokens=sum(c.completion_tokens for c in done),
        cached_tokens=sum(c.cached_tokens for c in done),
    )


async def judge_tasks(complete: Complete, tasks: Sequence[JudgeTask], sampling: JudgeSampling) -> list[JudgeReply]:
    """Judge a batch: one concurrent conversation per task; a failed task fails alone.

    Args:
        complete: the backend's chat completion.
        tasks: the batch.
        sampling: how to ask.

    Returns:
        One reply per task, in order; a task whose turn failed gets ``JudgeReply(error=...)``.

    Raises:
        BackendError: the backend cannot answer at all (the service marks the whole batch).
    """

    async def one(task: JudgeTask) -> JudgeReply:
        try:
            return await judge_task(complete, task, sampling)
        except TurnError as exc:
            logger.warning("judge turn failed: %s", exc)
            return JudgeReply.failed(str(exc))

    # Every conversation runs to its end before an error is raised, so none is left running unawaited.
    results = await asyncio.gather(*(one(task) for task in tasks), return_exceptions=True)
    replies: list[JudgeReply] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        replies.append(result)
    return replies


def warm_up_task() -> JudgeTask:
    """A small unified task that asks every kind of turn (compiles both regexes, fills the caches)."""
    schema = SCHEMAS["compeer"]
    candidate = parse_candidate(schema.example, schema)
    history = [DialogueMessage("seeker", "I lost my job today.")]
    return build_task(schema, "unified", history, candidate, "Oh no. What happened?")
