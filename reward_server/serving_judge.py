"""``POST /v1/judge``: requests translated once, micro-batched backend work, verdicts and rewards out.

The group rewards (:mod:`reward_server.serving_rewards`) judge through the same :meth:`JudgeService.run`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from reward_server.backends.base import BackendError, JudgeBackend, JudgeReply
from reward_server.limits import Limits
from reward_server.settings import RewardSettings
from services.contracts.reward import (
    Components,
    JudgeRequest,
    JudgeResponse,
    JudgeResult,
    Judgments,
    ParsedCandidateOut,
    ParsedStepOut,
    PreferenceJudgmentOut,
    PreferenceProbabilities,
    StepJudgmentOut,
    Usage,
)
from services.core.batching import BatchStats, MicroBatcher
from services.core.candidate import ParsedCandidate, parse_candidate
from services.core.judge_prompts import TEMPLATE_VERSION, JudgeTask, build_task
from services.core.outcome import JudgeOutcome, judge_outcome
from services.core.schemas import SCHEMAS, Schema
from services.core.types import DialogueMessage, JudgeMode, Scoring

logger = logging.getLogger(__name__)


class JudgeMetrics:
    """Judge-specific Prometheus metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        ns = "unifireward"
        self.items = Counter("judge_items", "Items judged, by status", ["status"], namespace=ns, registry=registry)
        self.reward = Histogram(
            "judge_reward", "Rewards given", namespace=ns, registry=registry, buckets=tuple(range(-6, 7))
        )
        self.batch_size = Histogram(
            "judge_batch_size",
            "Tasks per backend call",
            namespace=ns,
            registry=registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.queue_wait = Histogram(
            "judge_queue_wait_seconds", "Time in the batch queue", namespace=ns, registry=registry
        )
        self.queued = Gauge("judge_queued_items", "Items waiting for a batch", namespace=ns, registry=registry)
        self.without_probability = Counter(
            "judge_without_probability",
            "Judgments scored expected that had no probability and counted their discrete value",
            namespace=ns,
            registry=registry,
        )

    def on_batch(self, stats: BatchStats) -> None:
        """Record one backend call."""
        self.batch_size.observe(stats.items)
        self.queue_wait.observe(stats.queue_wait_s)


@dataclass(frozen=True)
class JudgeInput:
    """One candidate to judge, translated from its request once: its result id and its judge task."""

    id: str
    task: JudgeTask


@dataclass(frozen=True)
class Judged:
    """The results of a list of :class:`JudgeInput`, in order, and the work they took."""

    results: list[JudgeResult]
    usage: Usage
    #: How long the work waited for room in a full queue (only with a ``room_timeout_s``).
    room_wait_s: float = 0.0


class JudgeService:
    """Judges items with a backend behind a micro-batcher (``POST /v1/judge``; the group rewards use it too)."""

    def __init__(self, backend: JudgeBackend, settings: RewardSettings, registry: CollectorRegistry) -> None:
        self.backend = backend
        self.settings = settings
        self.limits = Limits(settings.max_items_per_request, settings.max_field_chars, settings.max_history_messages)
        self.metrics = JudgeMetrics(registry)
        self.batcher: MicroBatcher[JudgeTask, JudgeReply] = MicroBatcher(
            self._run_batch,
            max_batch_size=min(settings.max_batch_size, backend.max_batch_size),
            max_wait_s=settings.batch_wait_ms / 1000,
            max_queued_items=settings.max_queued_items,
            max_concurrent_batches=backend.max_concurrent_batches,
            on_batch=self.metrics.on_batch,
        )
        self.metrics.queued.set_function(lambda: self.batcher.queued_items)

    async def _run_batch(self, tasks: list[JudgeTask]) -> list[JudgeReply]:
        try:
            replies = await self.backend.judge(tasks)
        except BackendError as exc:
            return [JudgeReply.failed(str(exc)) for _ in tasks]
        return list(replies)

    def translate(self, request: JudgeRequest) -> list[JudgeInput]:
        """The request's items as judge inputs, every limit checked once.

        Raises:
            LimitExceededError: more items or messages than the settings allow.
            InvalidRequestError: a field over the length limit, or a missing reference.
        """
        self.limits.item_count(len(request.items), "items")
        schema = SCHEMAS[request.schema_name]
        inputs = []
        for i, item in enumerate(request.items):
            self.limits.dialogue(f"items.{i}", item.history, item.reference, request.mode)
            task = self.prepare(
                schema, request.mode, item.history, item.reference, item.candidate, f"items.{i}.candidate"
            )
            inputs.append(JudgeInput(item.id if item.id is not None else str(i), task))
        return inputs

    def prepare(
        self,
        schema: Schema,
        mode: JudgeMode,
        history: Sequence[DialogueMessage],
        reference: str | None,
        candidate: str,
        param: str,
    ) -> JudgeTask:
        """One candidate's judge task: its length checked and the candidate parsed, once.

        The dialogue's own limits are the caller's to check, once per dialogue (:meth:`Limits.dialogue`).

        Raises:
            InvalidRequestError: the candidate is over the length limit.
        """
        self.limits.text(candidate, param)
        return build_task(schema, mode, history, parse_candidate(candidate, schema), reference)

    async def judge(self, request: JudgeRequest) -> JudgeResponse:
        """Judge every item of the request.

        Raises:
            LimitExceededError: more items or messages than the settings allow.
            InvalidRequestError: a field over the length limit, or a missing reference.
            QueueFullError: the batcher's queue is full.
        """
        judged = await self.run(self.translate(request), request.scoring or self.settings.scoring)
        return JudgeResponse(
            results=judged.results, model=self.backend.model, template_version=TEMPLATE_VERSION, usage=judged.usage
        )

    async def run(self, inputs: Sequence[JudgeInput], scoring: Scoring, room_timeout_s: float | None = None) -> Judged:
        """Judge translated inputs through the micro-batcher; ``scoring`` says how verdicts become rewards.
        With ``room_timeout_s`` a full queue is waited for (up to that long) instead of refused.

        Raises:
            QueueFullError: the batcher's queue is full (or stayed full for ``room_timeout_s``).
        """
        tasks = [item.task for item in inputs]
        room_wait_s = 0.0
        if room_timeout_s is None:
            replies = await self.batcher.submit(tasks)
        else:
            submitted = await self.batcher.submit_within(tasks, room_timeout_s)
            replies, room_wait_s = submitted.results, submitted.room_wait_s
        results = [self._result(item, reply, scoring) for item, reply in zip(inputs, replies, strict=True)]
        usage = Usage(
            items=len(results),
            judge_turns=sum(len(item.task.turns) for item in inputs),
            prompt_tokens=sum(r.prompt_tokens for r in replies),
            completion_tokens=sum(r.completion_tokens for r in replies),
        )
        return Judged(results, usage, room_wait_s)

    def _result(self, item: JudgeInput, reply: JudgeReply, scoring: Scoring) -> JudgeResult:
        item_id, task = item.id, item.task
        parsed = _parsed_out(task.candidate)
        if reply.error is not None:
            self.metrics.items.labels("backend_error").inc()
            return JudgeResult(
                id=item_id,
                reward=None,
                scoring=scoring,
                components=None,
                judgments=None,
                parsed=parsed,
                status="backend_error",
                errors=[f"backend error: {reply.error}"],
            )
        done = judge_outcome(task, reply.verdicts, self.settings.unparseable, scoring)
        self.metrics.items.labels(done.status).inc()
        self.metrics.reward.observe(done.breakdown.reward)
        self.metrics.without_probability.inc(done.breakdown.without_probability)
        return JudgeResult(
            id=item_id,
            reward=done.breakdown.reward,
            scoring=scoring,
            components=Components(
                steps=list(done.breakdown.steps),
                preference=done.breakdown.preference,
                format=done.breakdown.format,
                unparsed=done.breakdown.unparsed,
                without_probability=done.breakdown.without_probability,
            ),
            judgments=_judgments_out(done, reply.raw),
            parsed=parsed,
            status=done.status,
            errors=done.errors,
        )


def _judgments_out(done: JudgeOutcome, raw: Sequence[str]) -> Judgments:
    pref = done.preference
    return Judgments(
        steps=[
            StepJudgmentOut(
                step=s.step,
                verdict=s.verdict,
                rationale=s.rationale,
                status=s.status,
                source=s.source,
                p_correct=s.p_correct,
            )
            for s in done.steps
        ],
        preference=None
        if pref is None
        else PreferenceJudgmentOut(
            option=pref.preference,
            rationale=pref.rationale,
            status=pref.status,
            probabilities=None if pref.probabilities is None else PreferenceProbabilities(**pref.probabilities),
        ),
        raw=list(raw),
    )


def _parsed_out(candidate: ParsedCandidate) -> ParsedCandidateOut:
    return ParsedCandidateOut(
        steps={
            name: ParsedStepOut(text=step.text, fields=step.fields, invalid=step.invalid)
            for name, step in candidate.steps.items()
        },
        response=candidate.response,
        missing=candidate.missing,
        complete=candidate.complete,
    )
