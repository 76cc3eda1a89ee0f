"""``POST /openrlhf/reward``: OpenRLHF's one-sample reward requests, gathered back into GRPO groups.

OpenRLHF 0.11.2 sends every sampled reply in a request of its own, so no request holds a group. The
cohort buffer holds each sample under its label's ``group_id`` until ``group_size`` siblings have
arrived, or until ``REWARD_COHORT_WAIT_S`` after the first of them (then the samples that came form
a partial group), and scores the group in one go through :class:`GroupRewardService`: every output
judged (through the judge's micro-batcher, with other groups) while the embedder measures the
group's redundancy. Each request is answered with its own samples' rewards.

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

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from reward_server.group_serving import GroupRewardService
from reward_server.protocol import (
    CandidateReward,
    OpenRLHFRewardRequest,
    OpenRLHFRewardResponse,
    RewardGroup,
    RewardsRequest,
)
from reward_server.settings import RewardSettings
from services.batching import QueueFullError
from services.errors import InvalidRequestError, ServiceError
from services.gathering import Group, GroupGatherer, score_by_kind
from services.openrlhf import (
    EXTRA_LOG_KEYS,
    PromptLabel,
    Redundancy,
    SampleReward,
    fallback_sample,
    group_key,
    judge_kind,
    parse_label,
    policy_output,
    sample_reward,
)
from services.redundancy import Variant

logger = logging.getLogger(__name__)


class CohortMetrics:
    """Prometheus metrics of the cohort buffer."""

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


class CohortBuffer:
    """Gathers OpenRLHF's samples into their GRPO groups and scores each group once.

    Args:
        groups: the group reward service (judge and embedder).
        settings: the reward service's settings (wait, deadline, fallback reward, limits).
        registry: where the metrics go.
    """

    def __init__(self, groups: GroupRewardService, settings: RewardSettings, registry: CollectorRegistry) -> None:
        self.groups = groups
        self.settings = settings
        self.metrics = CohortMetrics(registry)
        self.gatherer: GroupGatherer[PromptLabel, str, SampleReward] = GroupGatherer(
            self._score,
            self._fallback,
            wait_s=settings.cohort_wait_s,
            flush_s=settings.cohort_flush_ms / 1000,
            max_items_per_call=settings.max_items_per_request,
            max_open=settings.max_open_cohorts,
            on_close=self._on_close,
        )
        self.metrics.open.set_function(lambda: self.gatherer.open_groups)

    async def close(self) -> None:
        """Answer every waiting sample with the fallback reward and stop the groups being scored."""
        await self.gatherer.close()

    def _read(self, request: OpenRLHFRewardRequest) -> list[tuple[PromptLabel, str]]:
        """Each sample's label and output; every check happens before any sample joins a group."""
        n = len(request.query)
        for name, values in (("prompts", request.prompts), ("labels", request.labels)):
            if values is not None and len(values) != n:
                raise InvalidRequestError(
                    f"{len(values)} {name} for {n} queries; OpenRLHF sends one of each per sample", param=name
                )
        judge = self.groups.judge
        judge.check_item_count(n, "query")
        samples = []
        for i, query in enumerate(request.query):
            label = parse_label(request.labels[i], f"labels.{i}") if request.labels is not None else PromptLabel()
            prompt = request.prompts[i] if request.prompts is not None else ""
            output = policy_output(query, prompt, self.settings.openrlhf_stop_markers)
            judge.check_dialogue(f"labels.{i}", label.history, label.reference, label.mode)
            judge.check_text(output, f"query.{i}")
            judge.check_item_count(label.group_size, f"labels.{i}.group_size")
            samples.append((label, output))
        return samples

    async def reward(self, request: OpenRLHFRewardRequest) -> OpenRLHFRewardResponse:
        """Score the request's samples with their groups.

        Raises:
            InvalidRequestError: lists of different lengths, an unreadable label, a field over its limit,
                or a missing reference where the mode needs one (422).
            RequestTooLargeError: more samples, or a larger group, than the settings allow (413).
            QueueFullError: too many groups are waiting for siblings (429).
        """
        started = time.monotonic()
        samples = self._read(request)
        try:
            futures = self.gatherer.join_all([(group_key(lab), lab.group_size, lab, out) for lab, out in samples])
        except QueueFullError as exc:
            raise QueueFullError(f"{exc.message} (REWARD_MAX_OPEN_COHORTS)") from exc
        remaining = self.settings.openrlhf_deadline_s - (time.monotonic() - started)
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
        logger.warning("a sample was not scored within %s s: fallback reward", self.settings.openrlhf_deadline_s)
        return self._fallback(0.0)

    def _fallback(self, fill: float) -> SampleReward:
        """The flagged fallback reward of a sample that was not judged."""
        return fallback_sample(self.settings.openrlhf_fallback_reward, fill)

    def _on_close(self, reason: str, fill: float) -> None:
        self.metrics.groups.labels(reason).inc()
        self.metrics.fill.observe(fill)

    async def _score(self, groups: list[Group[PromptLabel, str, SampleReward]]) -> list[list[SampleReward]]:
        """Judge and reweight closed groups, one ``/v1/rewards`` call per schema and mode."""
        return await score_by_kind(groups, judge_kind, self._score_call)

    async def _score_call(self, groups: list[Group[PromptLabel, str, SampleReward]]) -> list[list[SampleReward]]:
        first = groups[0].context
        request = RewardsRequest(
            schema_name=first.schema_name,
            mode=first.mode,
            groups=[
                RewardGroup(history=g.context.history, reference=g.context.reference, candidates=g.items)
                for g in groups
            ],
        )
        try:
            scored = await self.groups.rewards(request)
        except ServiceError as exc:
            logger.warning("%d groups were not judged (%s): fallback rewards", len(groups), exc.message)
            return [[self._fallback(g.fill)] * len(g.items) for g in groups]
        variant: Variant = self.settings.redundancy_variant
        fallback = self.settings.openrlhf_fallback_reward
        return [
            [
                sample_reward(c.judge, _redundancy(c), variant=variant, fallback_reward=fallback, group_fill=g.fill)
                for c in out.candidates
            ]
            for g, out in zip(groups, scored.groups, strict=True)
        ]


def _redundancy(candidate: CandidateReward) -> Redundancy | None:
    """The candidate's redundancy when the embedder measured it."""
    if candidate.redundancy != "ok" or candidate.weight is None:
        return None
    return Redundancy(
        s_in=candidate.s_in or 0.0, s_hi=candidate.s_hi or 0.0, tau=candidate.tau or 0.0, weight=candidate.weight
    )
