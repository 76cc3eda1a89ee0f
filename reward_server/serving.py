"""The judge service: requests in, micro-batched backend work, parsed judgments and rewards out."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from reward_server.backends.base import BackendError, JudgeBackend, JudgeReply
from reward_server.protocol import (
    Components,
    JudgeItem,
    JudgeMode,
    JudgeRequest,
    JudgeResponse,
    JudgeResult,
    Judgments,
    Message,
    ParsedCandidateOut,
    ParsedStepOut,
    PreferenceJudgmentOut,
    StepJudgmentOut,
    Usage,
)
from reward_server.settings import RewardSettings
from services.assessment import Assessment, assess
from services.batching import BatchStats, MicroBatcher
from services.candidate_parser import ParsedCandidate, parse_candidate
from services.errors import InvalidRequestError, RequestTooLargeError
from services.esc_schema import SCHEMAS
from services.judge_protocol import TEMPLATE_VERSION, JudgeTask, Turn, build_task

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

    def on_batch(self, stats: BatchStats) -> None:
        """Record one backend call."""
        self.batch_size.observe(stats.items)
        self.queue_wait.observe(stats.queue_wait_s)


class JudgeService:
    """Judges items with a backend behind a micro-batcher."""

    def __init__(self, backend: JudgeBackend, settings: RewardSettings, registry: CollectorRegistry) -> None:
        self.backend = backend
        self.settings = settings
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
            return [JudgeReply(answers=[], error=str(exc)) for _ in tasks]
        return list(replies)

    def check_text(self, text: str, param: str) -> None:
        """Refuse a text field over the length limit (422)."""
        if len(text) > self.settings.max_field_chars:
            raise InvalidRequestError(
                f"{len(text)} characters; the limit is {self.settings.max_field_chars}",
                param=param,
                code="string_too_long",
            )

    def check_dialogue(self, prefix: str, history: Sequence[Message], reference: str | None, mode: JudgeMode) -> None:
        """Refuse a history over the limits (413, 422) or a missing reference in a mode that needs one (422)."""
        if len(history) > self.settings.max_history_messages:
            raise RequestTooLargeError(
                f"{len(history)} history messages; the limit is {self.settings.max_history_messages}",
                param=f"{prefix}.history",
            )
        for j, message in enumerate(history):
            self.check_text(message.content, f"{prefix}.history.{j}.content")
        self.check_text(reference or "", f"{prefix}.reference")
        if mode != "prm" and reference is None:
            raise InvalidRequestError(
                f"mode {mode!r} compares the reply with a reference; this item has none",
                param=f"{prefix}.reference",
                code="missing_reference",
            )

    def check_item_count(self, count: int, param: str) -> None:
        """Refuse more items than one request may hold (413)."""
        if count > self.settings.max_items_per_request:
            raise RequestTooLargeError(
                f"{count} items in one request; the limit is {self.settings.max_items_per_request}", param=param
            )

    def _check_limits(self, request: JudgeRequest) -> None:
        self.check_item_count(len(request.items), "items")
        for i, item in enumerate(request.items):
            self.check_dialogue(f"items.{i}", item.history, item.reference, request.mode)
            self.check_text(item.candidate, f"items.{i}.candidate")

    async def judge(self, request: JudgeRequest) -> JudgeResponse:
        """Judge every item of the request.

        Raises:
            RequestTooLargeError: more items or messages than the settings allow (413).
            InvalidRequestError: a field over the length limit, or a missing reference (422).
            QueueFullError: the batcher's queue is full (429).
        """
        self._check_limits(request)
        schema = SCHEMAS[request.schema_name]
        return await self.judge_parsed(request, [parse_candidate(item.candidate, schema) for item in request.items])

    async def judge_parsed(self, request: JudgeRequest, parsed: Sequence[ParsedCandidate]) -> JudgeResponse:
        """Judge a request whose limits were checked and whose candidates were parsed by the caller.

        Raises:
            QueueFullError: the batcher's queue is full (429).
        """
        schema = SCHEMAS[request.schema_name]
        tasks = [
            build_task(schema, request.mode, tuple(Turn(m.role, m.content) for m in item.history), cand, item.reference)
            for item, cand in zip(request.items, parsed, strict=True)
        ]
        replies = await self.batcher.submit(tasks)
        results = [
            self._result(i, item, task, reply)
            for i, (item, task, reply) in enumerate(zip(request.items, tasks, replies, strict=True))
        ]
        usage = Usage(
            items=len(results),
            judge_turns=sum(len(t.turns) for t in tasks),
            prompt_tokens=sum(r.prompt_tokens for r in replies),
            completion_tokens=sum(r.completion_tokens for r in replies),
        )
        return JudgeResponse(results=results, model=self.backend.model, template_version=TEMPLATE_VERSION, usage=usage)

    def _result(self, index: int, item: JudgeItem, task: JudgeTask, reply: JudgeReply) -> JudgeResult:
        item_id = item.id if item.id is not None else str(index)
        parsed = _parsed_out(task.candidate)
        if reply.error is not None:
            self.metrics.items.labels("backend_error").inc()
            return JudgeResult(
                id=item_id,
                reward=None,
                components=None,
                judgments=None,
                parsed=parsed,
                status="backend_error",
                errors=[f"backend error: {reply.error}"],
            )
        done = assess(task, reply.answers, self.settings.unparseable)
        self.metrics.items.labels(done.status).inc()
        self.metrics.reward.observe(done.breakdown.reward)
        return JudgeResult(
            id=item_id,
            reward=done.breakdown.reward,
            components=Components(
                steps=list(done.breakdown.steps),
                preference=done.breakdown.preference,
                format=done.breakdown.format,
                unparsed=done.breakdown.unparsed,
            ),
            judgments=_judgments_out(done, reply.answers),
            parsed=parsed,
            status=done.status,
            errors=done.errors,
        )


def _judgments_out(done: Assessment, answers: Sequence[str]) -> Judgments:
    pref = done.preference
    return Judgments(
        steps=[
            StepJudgmentOut(step=s.step, verdict=s.verdict, rationale=s.rationale, status=s.status, source=s.source)
            for s in done.steps
        ],
        preference=None
        if pref is None
        else PreferenceJudgmentOut(option=pref.preference, rationale=pref.rationale, status=pref.status),
        raw=list(answers),
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
