"""Group rewards: judge every output of a GRPO group, ask the embedder for redundancy, combine.

The one path that scores a group: ``POST /v1/rewards`` translates its request into
:class:`GroupInput` objects, ``POST /openrlhf/reward`` builds them from the samples it gathered, and
both call :meth:`GroupRewardService.score`, where :func:`candidate_reward` is the only place a
judgment meets its redundancy weight. The trainer's agent executor sends its groups to
``/v1/rewards``, so its rewards come from here too.

Judging and the redundancy call run concurrently. Redundancy is measured on each output's final
response (the whole output when no response could be parsed) against its siblings and the
dialogue's utterances. If the embedder is down, slow (past ``REWARD_EMBEDDER_TIMEOUT_S``) or
answers an error, the rewards come back unweighted with a status that says why: the judge's work is
never thrown away for want of a weight, and the request never fails with a 5xx for it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from reward_server.answer_log import AnswerLog, AnswerRecord
from reward_server.serving_judge import JudgeInput, JudgeService
from reward_server.settings import RewardSettings
from services.contracts.clients import (
    EmbedderClient,
    ProtocolMismatchError,
    ServiceResponseError,
    ServiceUnreachableError,
)
from services.contracts.common import ErrorBody
from services.contracts.embedder import GroupRedundancyOut, RedundancyGroup, RedundancyRequest, RedundancyResponse
from services.contracts.reward import (
    CandidateReward,
    GroupRewards,
    JudgeResult,
    RedundancyOptions,
    RedundancyStatus,
    RewardCandidate,
    RewardsRequest,
    RewardsResponse,
    Usage,
)
from services.core.errors import NotReadyError, ServiceError
from services.core.judge_prompts import TEMPLATE_VERSION, JudgeTask
from services.core.redundancy import apply_weight
from services.core.schemas import SCHEMAS
from services.core.types import DialogueMessage, LengthUnit, Scoring, Variant
from services.serving.http import http_status

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CandidateInput:
    """One output of a group, translated once: its id, its text as sent and its judge task."""

    id: str
    text: str
    task: JudgeTask

    @property
    def reply(self) -> str:
        """What redundancy is measured on: the final response, or the whole output when none was parsed."""
        return self.task.candidate.response or self.text


@dataclass(frozen=True)
class GroupInput:
    """One GRPO group, translated once: the dialogue and its outputs (limits checked, outputs parsed)."""

    id: str
    history: Sequence[DialogueMessage]
    candidates: list[CandidateInput]


@dataclass(frozen=True)
class RedundancyParams:
    """How redundancy applies to a call: the request's options over the service's defaults."""

    enabled: bool
    variant: Variant
    alpha: float
    beta: float
    length_unit: LengthUnit


@dataclass(frozen=True)
class ScoredGroups:
    """What :meth:`GroupRewardService.score` gives: one :class:`GroupRewards` per group, and the work done."""

    groups: list[GroupRewards]
    model: str
    embedder_model: str | None
    usage: Usage
    #: How long the judge work waited for room in a full queue (only with a ``room_timeout_s``).
    room_wait_s: float = 0.0


def candidate_reward(
    result: JudgeResult, scored: GroupRedundancyOut | None, index: int, status: RedundancyStatus, variant: Variant
) -> CandidateReward:
    """A candidate's final reward: its judged reward weighted by its redundancy (COMPEER eq. 5 with ``variant``).

    The only function that combines a judgment with its weight; every way of scoring a group uses it.

    Args:
        result: the candidate's judgment.
        scored: its group's redundancy; None when it was not measured (the reward is the raw reward).
        index: the candidate's place in its group.
        status: the redundancy status of its group.
        variant: how the weight applies to a negative reward.
    """
    raw = result.reward
    s_in = s_hi = tau = weight = None
    reward = float(raw) if raw is not None else None
    if scored is not None:
        s_in, s_hi, tau, weight = scored.s_in[index], scored.s_hi[index], scored.tau, scored.weights[index]
        reward = apply_weight(raw, weight, variant) if raw is not None else None
    return CandidateReward(
        id=result.id,
        reward=reward,
        raw_reward=raw,
        s_in=s_in,
        s_hi=s_hi,
        tau=tau,
        weight=weight,
        redundancy=status,
        judge=result,
    )


def _finite(scored: GroupRedundancyOut) -> bool:
    """Whether every number of a group's redundancy is finite (a NaN weight would make a NaN reward)."""
    numbers = [*scored.s_in, *scored.s_hi, *scored.weights, scored.tau, scored.mean_length]
    return all(math.isfinite(x) for x in numbers)


def _not_scored(group_id: str, exc: ServiceError) -> GroupRewards:
    """The answer for a group refused on its own (``invalid_groups: report``)."""
    _, type_ = http_status(exc)
    error = ErrorBody(message=exc.message, type=type_, code=exc.code, param=exc.param)
    return GroupRewards(
        id=group_id,
        candidates=[],
        tau=None,
        mean_length=None,
        redundancy="not_scored",
        redundancy_error=None,
        error=error,
    )


class GroupRewardService:
    """``/v1/rewards``: judged rewards of GRPO groups, reweighted by redundancy.

    Args:
        judge: the judge service (its micro-batcher and limits).
        settings: the reward service's settings (redundancy defaults, embedder deadline).
        embedder: the embedding service's client; None disables reweighting.
        registry: where the redundancy counter goes.
    """

    def __init__(
        self,
        judge: JudgeService,
        settings: RewardSettings,
        embedder: EmbedderClient | None,
        registry: CollectorRegistry,
    ) -> None:
        self.judge = judge
        self.settings = settings
        self.embedder = embedder
        self.answer_log = AnswerLog(settings.answer_log) if settings.answer_log is not None else None
        self.outcomes = Counter(
            "redundancy_requests",
            "Redundancy calls of /v1/rewards, by outcome",
            ["status"],
            namespace="unifireward",
            registry=registry,
        )

    def params(self, options: RedundancyOptions | None = None) -> RedundancyParams:
        """The redundancy of a call: the request's options over the service's defaults."""
        options = options or RedundancyOptions()
        defaults = self.settings.redundancy
        return RedundancyParams(
            enabled=options.enabled,
            variant=options.variant or defaults.variant,
            alpha=options.alpha if options.alpha is not None else defaults.alpha,
            beta=options.beta if options.beta is not None else defaults.beta,
            length_unit=options.length_unit or defaults.length_unit,
        )

    def _translate(self, request: RewardsRequest) -> list[GroupInput | GroupRewards]:
        """Each group as a :class:`GroupInput`, every limit checked once; with ``invalid_groups: report``
        a group that fails its checks becomes its own error answer instead of failing the request."""
        limits = self.judge.limits
        limits.item_count(sum(len(g.candidates) for g in request.groups), "groups")
        schema = SCHEMAS[request.schema_name]
        out: list[GroupInput | GroupRewards] = []
        for g, group in enumerate(request.groups):
            group_id = group.id if group.id is not None else str(g)
            try:
                limits.dialogue(f"groups.{g}", group.history, group.reference, request.mode)
                candidates = []
                for c, given in enumerate(group.candidates):
                    cand_id, text = (given.id, given.candidate) if isinstance(given, RewardCandidate) else (None, given)
                    param = f"groups.{g}.candidates.{c}"
                    task = self.judge.prepare(schema, request.mode, group.history, group.reference, text, param)
                    candidates.append(CandidateInput(cand_id if cand_id is not None else str(c), text, task))
            except ServiceError as exc:
                if request.invalid_groups == "reject":
                    raise
                out.append(_not_scored(group_id, exc))
                continue
            out.append(GroupInput(group_id, group.history, candidates))
        return out

    async def rewards(self, request: RewardsRequest) -> RewardsResponse:
        """Judge and reweight every group of the request.

        Raises:
            LimitExceededError: more outputs (or, with ``invalid_groups: reject``, messages) than allowed.
            InvalidRequestError: with ``invalid_groups: reject``, a field over its limit or a missing reference.
            QueueFullError: the judge's queue is full.
            NotReadyError: the judge's backend died while judging (503, never rewards without judgments).
        """
        translated = self._translate(request)
        params = self.params(request.redundancy)
        valid = [g for g in translated if isinstance(g, GroupInput)]
        scored = await self.score(valid, params, request.scoring or self.settings.scoring)
        backend = self.judge.backend
        failed = any(c.judge.status == "backend_error" for g in scored.groups for c in g.candidates)
        if failed and not backend.healthy():
            logger.error("the %s judge is dead: a rewards request answered 503", backend.name)
            raise NotReadyError(f"the {backend.name} judge is dead; no reward was given (see the service's log)")
        answers = iter(scored.groups)
        return RewardsResponse(
            groups=[next(answers) if isinstance(g, GroupInput) else g for g in translated],
            model=scored.model,
            embedder_model=scored.embedder_model,
            template_version=TEMPLATE_VERSION,
            variant=params.variant,
            usage=scored.usage,
        )

    async def score(
        self,
        groups: Sequence[GroupInput],
        params: RedundancyParams,
        scoring: Scoring,
        room_timeout_s: float | None = None,
    ) -> ScoredGroups:
        """Judge every output of the groups while the embedder measures their redundancy, then combine;
        ``scoring`` says how each output's verdicts become its raw reward. With ``room_timeout_s`` a full
        judge queue is waited for (work with its own deadline, such as gathered groups) instead of refused.

        Raises:
            QueueFullError: the judge's queue is full (or stayed full for ``room_timeout_s``).
        """
        inputs = [JudgeInput(c.id, c.task) for group in groups for c in group.candidates]
        judged, (redundancy, status, error) = await asyncio.gather(
            self.judge.run(inputs, scoring, room_timeout_s), self._redundancy(groups, params)
        )
        self.outcomes.labels(status).inc()
        results = iter(judged.results)
        out = []
        for g, group in enumerate(groups):
            measured = redundancy.groups[g] if redundancy is not None else None
            rewards = [
                candidate_reward(next(results), measured, c, status, params.variant)
                for c in range(len(group.candidates))
            ]
            out.append(
                GroupRewards(
                    id=group.id,
                    candidates=rewards,
                    tau=measured.tau if measured else None,
                    mean_length=measured.mean_length if measured else None,
                    redundancy=status,
                    redundancy_error=error,
                )
            )
        if self.answer_log is not None:
            self.answer_log.write(
                [
                    AnswerRecord(group.id, c.id, c.text, answer.reward, answer.raw_reward)
                    for group, answers in zip(groups, out, strict=True)
                    for c, answer in zip(group.candidates, answers.candidates, strict=True)
                ]
            )
        embedder_model = redundancy.model if redundancy is not None else None
        return ScoredGroups(out, self.judge.backend.model, embedder_model, judged.usage, judged.room_wait_s)

    async def _redundancy(
        self, groups: Sequence[GroupInput], params: RedundancyParams
    ) -> tuple[RedundancyResponse | None, RedundancyStatus, str | None]:
        """The embedder's answer, or why there is none (never raises for the embedder's sake)."""
        if not params.enabled:
            return None, "disabled", None
        if self.embedder is None:
            return None, "disabled", "no embedding service is configured (REWARD_EMBEDDER_URL)"
        if not groups:
            return None, "disabled", None
        body = RedundancyRequest(
            groups=[
                RedundancyGroup(
                    id=str(g),
                    candidates=[c.reply for c in group.candidates],
                    history=[m.content for m in group.history],
                )
                for g, group in enumerate(groups)
            ],
            alpha=params.alpha,
            beta=params.beta,
            length_unit=params.length_unit,
        )
        timeout = self.settings.embedder.timeout_s
        failure: tuple[RedundancyStatus, str]
        try:
            answer = await asyncio.wait_for(self.embedder.redundancy(body, timeout_s=timeout), timeout)
        except TimeoutError:
            failure = "embedder_unavailable", f"the embedding service did not answer within {timeout} s"
        except ServiceUnreachableError as exc:
            failure = "embedder_unavailable", f"the embedding service is unreachable: {exc}"
        except ServiceResponseError as exc:
            kind: RedundancyStatus = "embedder_unavailable" if exc.status in (429, 503) else "embedder_error"
            failure = kind, f"the embedding service answered {exc.status} {exc.code}: {exc.message}"
        except ProtocolMismatchError as exc:
            failure = "embedder_error", str(exc)
        else:
            sizes = [len(group.candidates) for group in groups]
            if any(
                [len(scored.weights), len(scored.s_in), len(scored.s_hi)] != [size] * 3
                for scored, size in zip(answer.groups, sizes, strict=False)
            ) or len(answer.groups) != len(sizes):
                failure = "embedder_error", "the embedding service's answer does not match the groups sent"
            elif not all(_finite(scored) for scored in answer.groups):
                failure = "embedder_error", "the embedding service answered non-finite redundancy (NaN or infinity)"
            else:
                return answer, "ok", None
        logger.warning("rewards are unweighted: %s", failure[1])
        return None, *failure
