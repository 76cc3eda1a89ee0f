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
from services.core.errors import InvalidRequestError, ServiceError
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


@dataclass(frozen=True)
class Sample:
    """One OpenRLHF sample, read once: its label, its output and the output's judge task."""

    label: PromptLabel
    output: str
    task: JudgeTask


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

    async def close(self) -> None:
        """Answer every waiting sample with the fallback reward and stop the groups being scored."""
        await self.gatherer.close()

    def _read(self, request: OpenRLHFRewardRequest) -> list[Sample]:
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
            samples.append(Sample(label, output, task))
        return samples

    async def reward(self, request: OpenRLHFRewardRequest) -> OpenRLHFRewardResponse:
        """Score the request's samples with their groups.

        Raises:
            InvalidRequestError: lists of different lengths, an unreadable label, a field over its limit,
                or a missing reference where the mode needs one.
            LimitExceededError: more samples, or a larger group, than the settings allow.
            QueueFullError: too many groups are waiting for siblings.
        """
        started = time.monotonic()
        samples = self._read(request)
        try:
            futures = self.gatherer.join_all([(group_key(s.label), s.label.group_size, s.label, s) for s in samples])
        except QueueFullError as exc:
            raise QueueFullError(f"{exc.message} (REWARD_MAX_OPEN_COHORTS)") from exc
        remaining = self.settings.openrlhf.deadline_s - (time.monotonic() - started)
        await asyncio.wait([asyncio.shield(f) for f in futures], timeout=max(remaining, 0.0))
        scored = [self._answer(future) for future in futures]
        return OpenRLHFRewardResponse(
            rewards=[s.reward for s in scored],
            scores=[s.reward for s in scored],
            extra_logs={key: [s.extra_logs[key] for s in scored] for key in EXTRA_LOG_KEYS},
        )

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
        try:
            scored = await self.groups.score(inputs, self.groups.params(), self.settings.scoring)
        except ServiceError as exc:
            logger.warning("%d groups were not judged (%s): fallback rewards", len(groups), exc.message)
            return [[self._fallback(g.fill)] * len(g.items) for g in groups]
        fallback = self.settings.openrlhf.fallback_reward
        return [
            [candidate_sample(c, fallback_reward=fallback, group_fill=g.fill) for c in out.candidates]
            for g, out in zip(groups, scored.groups, strict=True)
        ]
