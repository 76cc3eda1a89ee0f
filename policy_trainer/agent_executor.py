"""OpenRLHF agent executor (``--train.agent_func_path``) that rewards whole GRPO groups.

OpenRLHF 0.11.2's rollout actor generates the ``n_samples_per_prompt`` replies of a prompt
concurrently, each through ``executor.execute``. This executor is its single-turn executor (the
same tokenising, truncation, generation and log-probs) followed by a group barrier: each sample
waits under its label's ``group_id`` for its ``group_size`` siblings (at most
``TRAINER_GROUP_WAIT_S``; then the samples that came are scored as a partial group). The group is
scored once, by the reward service's one group path (``POST /v1/rewards``): every output judged while
the service's embedder measures the group's redundancy, combined by COMPEER's rule (eq. 5-7, with the
variant and gate of ``TRAINER_REDUNDANCY_*``). Each sample's reward is used as the service gave it.

Every sample gets a float reward and the numeric ``extra_logs`` of
:data:`services.contracts.openrlhf.EXTRA_LOG_KEYS`, the same as the reward service's ``/openrlhf/reward``.
Nothing here raises into OpenRLHF (a failed reward crashes its training step): a judge failure or a
deadline gives the flagged fallback reward, an embedder failure an unweighted reward. The groups of a
call are sent with ``invalid_groups: report``, so an output the service refuses costs only its own
group its rewards.

OpenRLHF loads ``policy_trainer/openrlhf_agent.py`` (which imports this class) by path and
instantiates ``AgentExecutor()`` in each rollout actor; its settings come from ``TRAINER_*``
environment variables, which the launcher puts in the Ray job's runtime environment.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from openrlhf.utils.agent import SingleTurnAgentExecutor
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.contracts.clients import ClientError, RewardClient, ServiceResponseError
from services.contracts.openrlhf import (
    PromptLabel,
    SampleReward,
    candidate_sample,
    fallback_sample,
    group_key,
    judge_kind,
    parse_label,
)
from services.contracts.reward import GroupRewards, RedundancyOptions, RewardGroup, RewardsRequest
from services.core.gathering import Group, GroupGatherer, score_by_kind
from services.core.redundancy import DEFAULT_ALPHA, DEFAULT_BETA
from services.core.types import LengthUnit, Variant

logger = logging.getLogger(__name__)


class AgentSettings(BaseSettings):
    """The agent executor's settings, from ``TRAINER_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="TRAINER_", extra="ignore")

    reward_url: str = Field("http://127.0.0.1:8000", description="The reward service (POST /v1/rewards).")
    reward_api_key: SecretStr | None = Field(None, description="Bearer key of the reward service.")
    group_wait_s: float = Field(
        120.0,
        gt=0,
        description="How long a sample waits for its group's siblings (the spread of their generation times).",
    )
    group_flush_ms: float = Field(
        10.0, ge=0, description="How long a complete group waits for others, to be scored with them in one call."
    )
    max_items_per_call: int = Field(
        256, ge=1, description="Most outputs per rewards call (keep it within REWARD_MAX_ITEMS_PER_REQUEST)."
    )
    judge_timeout_s: float = Field(120.0, gt=0, description="Deadline of a rewards call (judging and redundancy).")
    fallback_reward: float = Field(0.0, allow_inf_nan=False, description="Reward of a sample the judge did not score.")
    reweight: bool = Field(
        True, description="Reweight by redundancy (the reward service asks its embedder); false: unweighted rewards."
    )
    redundancy_variant: Variant = Field("paper", description="paper (eq. 5 as printed) or sign_aware.")
    redundancy_alpha: float = Field(DEFAULT_ALPHA, ge=0, description="Steepness of the length gate tau.")
    redundancy_beta: float = Field(DEFAULT_BETA, ge=0, description="Reply length at which tau is 1/2.")
    redundancy_length_unit: LengthUnit = Field("words", description="Reply length in words or embedder tokens.")


class GroupScorer:
    """Scores GRPO groups through the reward service's ``/v1/rewards``; never raises.

    Args:
        settings: where the service is and how redundancy applies.
        reward: a ready reward client (tests); built from the settings when None.
    """

    def __init__(self, settings: AgentSettings, reward: RewardClient | None = None) -> None:
        self.settings = settings
        self.reward = reward or RewardClient(
            settings.reward_url,
            api_key=settings.reward_api_key.get_secret_value() if settings.reward_api_key else None,
            timeout_s=settings.judge_timeout_s,
        )
        self.gatherer: GroupGatherer[PromptLabel, str, SampleReward] = GroupGatherer(
            self._score,
            self.fallback,
            wait_s=settings.group_wait_s,
            flush_s=settings.group_flush_ms / 1000,
            max_items_per_call=settings.max_items_per_call,
        )

    def fallback(self, fill: float) -> SampleReward:
        """The flagged fallback reward."""
        return fallback_sample(self.settings.fallback_reward, fill)

    async def score(self, label: object, output: str) -> SampleReward:
        """The reward of one sample, once its group has been scored (the fallback on any failure)."""
        try:
            parsed = parse_label(label)
            return await self.gatherer.join(group_key(parsed), parsed.group_size, parsed, output)
        except Exception as exc:
            logger.warning("sample not scored (%s): fallback reward", exc)
            return self.fallback(0.0)

    async def _score(self, groups: list[Group[PromptLabel, str, SampleReward]]) -> list[list[SampleReward]]:
        """Score closed groups: one ``/v1/rewards`` call per schema and mode."""
        return await score_by_kind(groups, judge_kind, self._score_call)

    def _request(self, groups: list[Group[PromptLabel, str, SampleReward]]) -> RewardsRequest:
        s = self.settings
        first = groups[0].context
        return RewardsRequest(
            schema_name=first.schema_name,
            mode=first.mode,
            groups=[
                RewardGroup(history=g.context.history, reference=g.context.reference, candidates=list(g.items))
                for g in groups
            ],
            redundancy=RedundancyOptions(
                enabled=s.reweight,
                variant=s.redundancy_variant,
                alpha=s.redundancy_alpha,
                beta=s.redundancy_beta,
                length_unit=s.redundancy_length_unit,
            ),
            invalid_groups="report",
        )

    async def _score_call(self, groups: list[Group[PromptLabel, str, SampleReward]]) -> list[list[SampleReward]]:
        """The groups' rewards as ``/v1/rewards`` gives them; the fallback where a group was not scored."""
        timeout = self.settings.judge_timeout_s
        try:
            answer = await asyncio.wait_for(self.reward.rewards(self._request(groups), timeout_s=timeout), timeout)
        except ServiceResponseError as exc:
            if exc.status == 413 and len(groups) > 1:  # more outputs than one request may hold: split the call
                half = len(groups) // 2
                parts = await asyncio.gather(self._score_call(groups[:half]), self._score_call(groups[half:]))
                return parts[0] + parts[1]
            logger.warning("%d groups were not scored (%s): fallback rewards", len(groups), exc)
            return [[self.fallback(g.fill)] * len(g.items) for g in groups]
        except (ClientError, TimeoutError) as exc:
            logger.warning("%d groups were not scored (%s): fallback rewards", len(groups), exc or "timeout")
            return [[self.fallback(g.fill)] * len(g.items) for g in groups]
        if len(answer.groups) != len(groups) or any(
            out.error is None and len(out.candidates) != len(g.items)
            for g, out in zip(groups, answer.groups, strict=True)
        ):
            logger.warning("the reward service's answer does not match the groups sent: fallback rewards")
            return [[self.fallback(g.fill)] * len(g.items) for g in groups]
        return [self._group_rewards(group, out) for group, out in zip(groups, answer.groups, strict=True)]

    def _group_rewards(self, group: Group[PromptLabel, str, SampleReward], out: GroupRewards) -> list[SampleReward]:
        if out.error is not None:
            logger.warning("a group was refused (%s: %s): fallback rewards", out.error.code, out.error.message)
            return [self.fallback(group.fill)] * len(group.items)
        fallback = self.settings.fallback_reward
        return [candidate_sample(c, fallback_reward=fallback, group_fill=group.fill) for c in out.candidates]

    async def aclose(self) -> None:
        """Fallback rewards for waiting samples, then close the client."""
        await self.gatherer.close()
        await self.reward.aclose()


class AgentExecutor(SingleTurnAgentExecutor):  # type: ignore[misc]
    """OpenRLHF's single-turn executor, rewarded by whole groups (see the module docstring).

    Args:
        settings: the executor's settings; read from ``TRAINER_*`` when None (as OpenRLHF builds it).
        scorer: a ready group scorer (tests); built from the settings on first use when None.
    """

    def __init__(self, settings: AgentSettings | None = None, scorer: GroupScorer | None = None) -> None:
        super().__init__(remote_rm_url=None)
        self.settings = settings or AgentSettings()
        self._scorer = scorer

    @property
    def scorer(self) -> GroupScorer:
        """The group scorer (its HTTP clients are made inside the rollout actor's event loop)."""
        if self._scorer is None:
            self._scorer = GroupScorer(self.settings)
        return self._scorer

    async def execute(
        self,
        prompt: Any,
        label: Any,
        sampling_params: Any,
        max_length: int,
        hf_tokenizer: Any,
        llm_engine: Any,
        images: Any = None,
    ) -> dict[str, Any]:
        """Generate one reply as OpenRLHF does, then reward it with its group."""
        output: dict[str, Any] = await super().execute(
            prompt, label, sampling_params, max_length, hf_tokenizer, llm_engine, images
        )
        try:
            start, end = output["action_ranges"][-1]
            text = hf_tokenizer.decode(output["observation_tokens"][start:end], skip_special_tokens=True)
        except Exception as exc:
            logger.warning("the reply could not be decoded (%s): fallback reward", exc)
            scored = self.scorer.fallback(0.0)
        else:
            scored = await self.scorer.score(label, text.strip())
        output.update(reward=scored.reward, scores=scored.reward, extra_logs=dict(scored.extra_logs))
        return output
