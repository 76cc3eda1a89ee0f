"""Group rewards: judge every output of a GRPO group, ask the embedder for redundancy, combine.

Judging and the redundancy call run concurrently. Redundancy is measured on each output's final
response (the whole output when no response could be parsed) against its siblings and the
dialogue's utterances. If the embedder is down, slow (past ``REWARD_EMBEDDER_TIMEOUT_S``) or
answers an error, the rewards come back unweighted with a status that says why: the judge's work is
never thrown away for want of a weight, and the request never fails with a 5xx for it.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry, Counter

from embedder.protocol import GroupRedundancyOut, RedundancyGroup, RedundancyRequest, RedundancyResponse
from reward_server.protocol import (
    CandidateReward,
    GroupRewards,
    JudgeItem,
    JudgeRequest,
    JudgeResult,
    RedundancyStatus,
    RewardCandidate,
    RewardGroup,
    RewardsRequest,
    RewardsResponse,
)
from reward_server.serving import JudgeService
from reward_server.settings import RewardSettings
from services.candidate_parser import parse_candidate
from services.clients import EmbedderClient, ProtocolMismatchError, ServiceResponseError, ServiceUnreachableError
from services.esc_schema import SCHEMAS
from services.judge_protocol import TEMPLATE_VERSION
from services.redundancy import Variant, apply_weight

logger = logging.getLogger(__name__)


def _candidates(group: RewardGroup) -> list[RewardCandidate]:
    return [c if isinstance(c, RewardCandidate) else RewardCandidate(candidate=c) for c in group.candidates]


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
        self.outcomes = Counter(
            "redundancy_requests",
            "Redundancy calls of /v1/rewards, by outcome",
            ["status"],
            namespace="unifireward",
            registry=registry,
        )

    def _check(self, request: RewardsRequest) -> None:
        self.judge.check_item_count(sum(len(g.candidates) for g in request.groups), "groups")
        for g, group in enumerate(request.groups):
            self.judge.check_dialogue(f"groups.{g}", group.history, group.reference, request.mode)
            for c, candidate in enumerate(_candidates(group)):
                self.judge.check_text(candidate.candidate, f"groups.{g}.candidates.{c}")

    async def rewards(self, request: RewardsRequest) -> RewardsResponse:
        """Judge and reweight every group of the request.

        Raises:
            RequestTooLargeError: more outputs or messages than the settings allow (413).
            InvalidRequestError: a field over the length limit, or a missing reference (422).
            QueueFullError: the judge's queue is full (429).
        """
        self._check(request)
        groups = [(group, _candidates(group)) for group in request.groups]
        items = [
            JudgeItem(id=f"{g}/{c}", history=group.history, candidate=cand.candidate, reference=group.reference)
            for g, (group, cands) in enumerate(groups)
            for c, cand in enumerate(cands)
        ]
        judge_request = JudgeRequest(schema_name=request.schema_name, mode=request.mode, items=items)
        schema = SCHEMAS[request.schema_name]
        parsed = [parse_candidate(item.candidate, schema) for item in items]
        # Redundancy is measured on the final responses (the whole output when none was parsed).
        responses = iter(p.response or item.candidate for p, item in zip(parsed, items, strict=True))
        replies = [[next(responses) for _ in cands] for _, cands in groups]
        judged, (redundancy, status, error) = await asyncio.gather(
            self.judge.judge_parsed(judge_request, parsed), self._redundancy(request, groups, replies)
        )
        self.outcomes.labels(status).inc()
        variant: Variant = request.redundancy.variant or self.settings.redundancy_variant
        results = iter(judged.results)
        out = []
        for g, (group, cands) in enumerate(groups):
            scored = redundancy.groups[g] if redundancy is not None else None
            rewards = []
            for c, cand in enumerate(cands):
                result = next(results)
                result.id = cand.id if cand.id is not None else str(c)
                rewards.append(self._candidate(result, scored, c, status, variant))
            out.append(
                GroupRewards(
                    id=group.id if group.id is not None else str(g),
                    candidates=rewards,
                    tau=scored.tau if scored else None,
                    mean_length=scored.mean_length if scored else None,
                    redundancy=status,
                    redundancy_error=error,
                )
            )
        return RewardsResponse(
            groups=out,
            model=judged.model,
            embedder_model=redundancy.model if redundancy is not None else None,
            template_version=TEMPLATE_VERSION,
            variant=variant,
            usage=judged.usage,
        )

    @staticmethod
    def _candidate(
        result: JudgeResult, scored: GroupRedundancyOut | None, index: int, status: RedundancyStatus, variant: Variant
    ) -> CandidateReward:
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

    async def _redundancy(
        self,
        request: RewardsRequest,
        groups: list[tuple[RewardGroup, list[RewardCandidate]]],
        replies: list[list[str]],
    ) -> tuple[RedundancyResponse | None, RedundancyStatus, str | None]:
        """The embedder's answer, or why there is none (never raises for the embedder's sake)."""
        options = request.redundancy
        if not options.enabled:
            return None, "disabled", None
        if self.embedder is None:
            return None, "disabled", "no embedding service is configured (REWARD_EMBEDDER_URL)"
        body = RedundancyRequest(
            groups=[
                RedundancyGroup(id=str(g), candidates=texts, history=[m.content for m in group.history])
                for g, ((group, _), texts) in enumerate(zip(groups, replies, strict=True))
            ],
            alpha=options.alpha if options.alpha is not None else self.settings.redundancy_alpha,
            beta=options.beta if options.beta is not None else self.settings.redundancy_beta,
            length_unit=options.length_unit or self.settings.redundancy_length_unit,
        )
        timeout = self.settings.embedder_timeout_s
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
            sizes = [len(cands) for _, cands in groups]
            if [len(scored.weights) for scored in answer.groups] == sizes:
                return answer, "ok", None
            failure = "embedder_error", "the embedding service's answer does not match the groups sent"
        logger.warning("rewards are unweighted: %s", failure[1])
        return None, *failure
