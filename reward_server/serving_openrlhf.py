"""``POST /openrlhf/reward``: OpenRLHF's one-sample reward requests, gathered back into GRPO groups.

OpenRLHF 0.11.2 sends every sampled reply in a request of its own, so no request holds a group. The
gatherer holds each sample under its label's ``group_id`` until ``group_size`` siblings have
arrived, or until ``REWARD_COHORT_WAIT_S`` after the first of them (then the samples that came form
a partial group), and scores the group in one go through :meth:`GroupRewardService.score`, the one
path that scores groups: every output judged (through the judge's micro-batcher, with other groups)
while the embedder measures the group's redundancy. Each request is answered with its own samples'
rewards, used as the group rewards gave them. Each request is read and checked once, before any of
its samples joins a group.

What the client is promised: a well-formed request is answered 200 within
``REWARD_OPENRLHF_DEADLINE_S`` (under OpenRLHF's 180 s timeout: a failed reward request crashes its
training step). A sample the judge could not score, or not in time, gets
``REWARD_OPENRLHF_FALLBACK_REWARD`` with ``fallback`` = 1 in its logs; an embedder failure leaves the
reward unweighted with ``reweighted`` = 0. A label without ``group_id`` is scored as a group of one.
A gathered group is never refused by a full judge queue while its deadline allows: it waits for room
(first come, first served, in pieces the queue holds), with ``queue_full`` = 1 in its logs.

Samples are grouped by ``group_id`` and the label's content: two prompts that wrongly share an id
never get judged against each other's dialogue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from reward_server.serving_rewards import CandidateInput, GroupInput, GroupRewardService
from reward_server.settings import RewardSettings
from services.contracts.openrlhf import (
    EXTRA_LOG_KEYS,
    OpenRLHFRewardRequest,
    OpenRLHFRewardResponse,
    PromptLabel,
    SampleReward,
    candidate_sample,
    fallback_sample,
    group_key,
    parse_label,
    policy_output,
)
from services.core.batching import QueueFullError
from services.core.errors import InvalidRequestError, NotReadyError, ServiceError
from services.core.gathering import Group, GroupGatherer
from services.core.judge_prompts import JudgeTask
from services.core.schemas import SCHEMAS

logger = logging.getLogger(__name__)


class GathererMetrics:
    """Prometheus metrics of the OpenRLHF gatherer."""

    def __init__(self, registry: CollectorRegistry) -> None:
        ns = "unifireward"
        self.groups = Counter(
            "openrlhf_groups", "Groups scored, by why they closed", ["closed_by"], namespace=ns, registry=registry
        )
        self.samples = Counter(
            "openrlhf_samples", "Samples answered, by outcome", ["outcome"], namespace=ns, registry=registry
        )
        self.fill = Histogram(
            "openrlhf_group_fill",
            "Share of the group scored together",
            namespace=ns,
            registry=registry,
            buckets=(0.25, 0.5, 0.75, 0.99, 1.0),
        )
        self.open = Gauge("openrlhf_open_groups", "Groups waiting for siblings", namespace=ns, registry=registry)
        self.queue_full = Counter(
            "openrlhf_queue_full_groups",
            "Groups that found the judge's queue full and waited for room, by outcome (judged, fallback)",
            ["outcome"],
            namespace=ns,
            registry=registry,
        )


@dataclass(frozen=True)
class Sample:
    """One OpenRLHF sample, read once: its label, its output and the output's judge task."""

    label: PromptLabel
    output: str
    task: JudgeTask
    #: When its request arrived (``time.monotonic``): its answer is due a deadline later.
    received: float


class OpenRLHFGatherer:
    """Gathers OpenRLHF's samples into their GRPO groups and scores each group once.

    Args:
        groups: the group reward service (judge and embedder).
        settings: the reward service's settings (wait, deadline, fallback reward, limits).
        registry: where the metrics go.
    """

    def __init__(self, groups: GroupRewardService, settings: RewardSettings, registry: CollectorRegistry) -> None:
        self.groups = groups
        self.settings = settings
        self.metrics = GathererMetrics(registry)
        self.gatherer: GroupGatherer[PromptLabel, Sample, SampleReward] = GroupGatherer(
            self._score,
            self._fallback,
            wait_s=settings.cohort.wait_s,
            flush_s=settings.cohort.flush_ms / 1000,
            max_items_per_call=settings.max_items_per_request,
            max_open=settings.max_open_cohorts,
            on_close=self._on_close,
        )
        self.metrics.open.set_function(lambda: self.gatherer.open_groups)

    async def drain(self) -> None:
        """Score every waiting group now, as a partial group, and wait until every group is scored."""
        logger.info("stopping: scoring %d waiting groups as they are", self.gatherer.open_groups)
        await self.gatherer.drain()

    async def close(self) -> None:
        """Answer every waiting sample with the fallback reward and stop the groups being scored."""
        await self.gatherer.close()

    def _read(self, request: OpenRLHFRewardRequest, received: float) -> list[Sample]:
        """Each sample's label, output and judge task; every check happens before any sample joins a group."""
        n = len(request.query)
        for name, values in (("prompts", request.prompts), ("labels", request.labels)):
            if values is not None and len(values) != n:
                raise InvalidRequestError(
                    f"{len(values)} {name} for {n} queries; OpenRLHF sends one of each per sample", param=name
                )
        judge = self.groups.judge
        judge.limits.item_count(n, "query")
        samples = []
        for i, query in enumerate(request.query):
            label = parse_label(request.labels[i], f"labels.{i}") if request.labels is not None else PromptLabel()
            prompt = request.prompts[i] if request.prompts is not None else ""
            output = policy_output(query, prompt, self.settings.openrlhf.stop_markers)
            judge.limits.dialogue(f"labels.{i}", label.history, label.reference, label.mode)
            judge.limits.item_count(label.group_size, f"labels.{i}.group_size")
            schema = SCHEMAS[label.schema_name]
            task = judge.prepare(schema, label.mode, label.history, label.reference, output, f"query.{i}")
            samples.append(Sample(label, output, task, received))
        return samples

    async def reward(self, request: OpenRLHFRewardRequest) -> OpenRLHFRewardResponse:
        """Score the request's samples with their groups.

        Raises:
            InvalidRequestError: lists of different lengths, an unreadable label, a field over its limit,
                or a missing reference where the mode needs one.
            LimitExceededError: more samples, or a larger group, than the settings allow.
            QueueFullError: too many groups are waiting for siblings.
            NotReadyError: the judge's backend died, so samples got no reward (503, never fallback rewards).
        """
        started = time.monotonic()
        samples = self._read(request, started)
        try:
            futures = self.gatherer.join_all([(group_key(s.label), s.label.group_size, s.label, s) for s in samples])
        except QueueFullError as exc:
            raise QueueFullError(f"{exc.message} (REWARD_MAX_OPEN_COHORTS)") from exc
        remaining = self.settings.openrlhf.deadline_s - (time.monotonic() - started)
        await asyncio.wait([asyncio.shield(f) for f in futures], timeout=max(remaining, 0.0))
        scored = [self._answer(future) for future in futures]
        self._refuse_if_dead(scored)
        return OpenRLHFRewardResponse(
            rewards=[s.reward for s in scored],
            scores=[s.reward for s in scored],
            extra_logs={key: [s.extra_logs[key] for s in scored] for key in EXTRA_LOG_KEYS},
        )

    def _refuse_if_dead(self, scored: list[SampleReward]) -> None:
        """A dead judge is an error OpenRLHF sees, never fallback rewards it would train on.

        Raises:
            NotReadyError: a sample got the fallback and the judge's backend reports itself dead.
        """
        backend = self.groups.judge.backend
        if any(s.fallback for s in scored) and not backend.healthy():
            self.metrics.samples.labels("judge_dead").inc(len(scored))
            logger.error(
                "the %s judge is dead: %d samples answered 503, not fallback rewards", backend.name, len(scored)
            )
            raise NotReadyError(f"the {backend.name} judge is dead; no reward was given (see the service's log)")

    def _answer(self, future: asyncio.Future[SampleReward]) -> SampleReward:
        if future.done():
            result = future.result()
            self.metrics.samples.labels("fallback" if result.fallback else "scored").inc()
            return result
        self.metrics.samples.labels("late").inc()
        logger.warning("a sample was not scored within %s s: fallback reward", self.settings.openrlhf.deadline_s)
        return self._fallback(0.0)

    def _fallback(self, fill: float) -> SampleReward:
        """The flagged fallback reward of a sample that was not judged."""
        return fallback_sample(self.settings.openrlhf.fallback_reward, fill)

    def _on_close(self, reason: str, fill: float) -> None:
        self.metrics.groups.labels(reason).inc()
        self.metrics.fill.observe(fill)

    async def _score(self, groups: list[Group[PromptLabel, Sample, SampleReward]]) -> list[list[SampleReward]]:
        """Score closed groups through the group rewards in one call (tasks of any schema and mode batch together)."""
        inputs = [
            GroupInput(
                str(g),
                group.context.history,
                [CandidateInput(str(i), s.output, s.task) for i, s in enumerate(group.items)],
            )
            for g, group in enumerate(groups)
        ]
        due = min(s.received for g in groups for s in g.items) + self.settings.openrlhf.deadline_s
        try:
            scored = await self.groups.score(
                inputs, self.groups.params(), self.settings.scoring, room_timeout_s=max(due - time.monotonic(), 0.0)
            )
        except ServiceError as exc:
            logger.warning("%d groups were not judged (%s): fallback rewards", len(groups), exc.message)
            full = isinstance(exc, QueueFullError)
            if full:
                self.metrics.queue_full.labels("fallback").inc(len(groups))
            return [[self._flag(self._fallback(g.fill), full)] * len(g.items) for g in groups]
        fallback = self.settings.openrlhf.fallback_reward
        full = scored.room_wait_s > 0
        if full:
            self.metrics.queue_full.labels("judged").inc(len(groups))
            logger.info("the judge's queue was full: %d groups waited %.2f s for room", len(groups), scored.room_wait_s)
        results = [
            [self._flag(candidate_sample(c, fallback_reward=fallback, group_fill=g.fill), full) for c in out.candidates]
            for g, out in zip(groups, scored.groups, strict=True)
        ]
        unjudged = sum(s.fallback for samples in results for s in samples)
        if unjudged:
            logger.warning("the judge gave no reward to %d samples (backend_error): fallback rewards", unjudged)
        return results

    @staticmethod
    def _flag(sample: SampleReward, queue_full: bool) -> SampleReward:
        """The sample with ``queue_full`` set in its logs when its group waited for room in the judge's queue."""
        if queue_full:
            sample.extra_logs["queue_full"] = 1.0
        return sample
