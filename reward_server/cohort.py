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
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

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
from services.openrlhf import (
    EXTRA_LOG_KEYS,
    PromptLabel,
    Redundancy,
    SampleReward,
    parse_label,
    policy_output,
    sample_reward,
)
from services.redundancy import Variant

logger = logging.getLogger(__name__)


@dataclass
class _Cohort:
    """The samples of one GRPO group that have arrived so far."""

    key: tuple[str, str]
    label: PromptLabel
    size: int
    outputs: list[str] = field(default_factory=list)
    futures: list[asyncio.Future[SampleReward]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


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
        self._open: dict[tuple[str, str], _Cohort] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.metrics.open.set_function(lambda: len(self._open))

    async def close(self) -> None:
        """Answer every waiting sample with the fallback reward and stop the groups being scored."""
        for cohort in list(self._open.values()):
            self._close_cohort(cohort, "shutdown")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

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
        futures = [self._join(label, output) for label, output in samples]
        remaining = self.settings.openrlhf_deadline_s - (time.monotonic() - started)
        await asyncio.wait([asyncio.shield(f) for f in futures], timeout=max(remaining, 0.0))
        scored = [self._answer(future) for future in futures]
        return OpenRLHFRewardResponse(
            rewards=[s.reward for s in scored],
            scores=[s.reward for s in scored],
            extra_logs={key: [s.extra_logs[key] for s in scored] for key in EXTRA_LOG_KEYS},
        )

    def _answer(self, future: asyncio.Future[SampleReward]) -> SampleReward:
        if future.done() and not future.cancelled() and future.exception() is None:
            result = future.result()
            self.metrics.samples.labels("fallback" if result.fallback else "scored").inc()
            return result
        self.metrics.samples.labels("late").inc()
        logger.warning("a sample was not scored within %s s: fallback reward", self.settings.openrlhf_deadline_s)
        return self._fallback(0.0)

    def _fallback(self, fill: float) -> SampleReward:
        """The flagged fallback reward of a sample that was not judged."""
        variant: Variant = self.settings.redundancy_variant
        return sample_reward(
            None, None, variant=variant, fallback_reward=self.settings.openrlhf_fallback_reward, group_fill=fill
        )

    def _join(self, label: PromptLabel, output: str) -> asyncio.Future[SampleReward]:
        """Add a sample to its group; the future resolves when the group has been scored."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SampleReward] = loop.create_future()
        if label.group_id is None or label.group_size == 1:
            cohort = _Cohort(key=("", ""), label=label, size=1, outputs=[output], futures=[future])
            self._score_later(cohort, "single")
            return future
        content = label.model_dump_json(by_alias=True, exclude={"group_id"})
        key = (label.group_id, hashlib.blake2b(content.encode(), digest_size=16).hexdigest())
        cohort_or_none = self._open.get(key)
        if cohort_or_none is None:
            if len(self._open) >= self.settings.max_open_cohorts:
                raise QueueFullError(
                    f"{len(self._open)} groups are waiting for their siblings (REWARD_MAX_OPEN_COHORTS)"
                )
            cohort = _Cohort(key=key, label=label, size=label.group_size)
            cohort.timer = loop.call_later(self.settings.cohort_wait_s, self._close_cohort, cohort, "deadline")
            self._open[key] = cohort
        else:
            cohort = cohort_or_none
        cohort.outputs.append(output)
        cohort.futures.append(future)
        if len(cohort.outputs) >= cohort.size:
            self._close_cohort(cohort, "full")
        return future

    def _close_cohort(self, cohort: _Cohort, reason: str) -> None:
        if self._open.get(cohort.key) is not cohort:
            return
        del self._open[cohort.key]
        if cohort.timer is not None:
            cohort.timer.cancel()
        if reason == "shutdown":
            for future in cohort.futures:
                future.set_result(self._fallback(len(cohort.outputs) / cohort.size))
            return
        self._score_later(cohort, reason)

    def _score_later(self, cohort: _Cohort, reason: str) -> None:
        self.metrics.groups.labels(reason).inc()
        self.metrics.fill.observe(len(cohort.outputs) / cohort.size)
        task = asyncio.get_running_loop().create_task(self._score(cohort))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _score(self, cohort: _Cohort) -> None:
        """Score a closed group and resolve its samples' futures (never raises but for cancellation)."""
        fill = len(cohort.outputs) / cohort.size
        try:
            results = await self._judge_group(cohort, fill)
        except asyncio.CancelledError:
            _resolve(cohort.futures, [self._fallback(fill)] * len(cohort.futures))
            raise
        except ServiceError as exc:
            logger.warning("group %s was not judged (%s): fallback rewards", cohort.label.group_id, exc)
            results = [self._fallback(fill)] * len(cohort.futures)
        except Exception:
            logger.exception("group %s failed: fallback rewards", cohort.label.group_id)
            results = [self._fallback(fill)] * len(cohort.futures)
        _resolve(cohort.futures, results)

    async def _judge_group(self, cohort: _Cohort, fill: float) -> list[SampleReward]:
        label = cohort.label
        scored = await self.groups.rewards(
            RewardsRequest(
                schema_name=label.schema_name,
                mode=label.mode,
                groups=[RewardGroup(history=label.history, reference=label.reference, candidates=cohort.outputs)],
            )
        )
        variant: Variant = self.settings.redundancy_variant
        fallback = self.settings.openrlhf_fallback_reward
        return [
            sample_reward(c.judge, _redundancy(c), variant=variant, fallback_reward=fallback, group_fill=fill)
            for c in scored.groups[0].candidates
        ]


def _redundancy(candidate: CandidateReward) -> Redundancy | None:
    """The candidate's redundancy when the embedder measured it."""
    if candidate.redundancy != "ok" or candidate.weight is None:
        return None
    return Redundancy(
        s_in=candidate.s_in or 0.0, s_hi=candidate.s_hi or 0.0, tau=candidate.tau or 0.0, weight=candidate.weight
    )


def _resolve(futures: Sequence[asyncio.Future[SampleReward]], results: Sequence[SampleReward]) -> None:
    for future, result in zip(futures, results, strict=True):
        if not future.done():
            future.set_result(result)
