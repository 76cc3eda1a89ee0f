"""OpenRLHF agent executor (``--train.agent_func_path``) that rewards whole GRPO groups.

OpenRLHF 0.11.2's rollout actor generates the ``n_samples_per_prompt`` replies of a prompt
concurrently, each through ``executor.execute``. This executor is its single-turn executor (the
same tokenising, truncation, generation and log-probs) followed by a group barrier: each sample
waits under its label's ``group_id`` for its ``group_size`` siblings (at most
``TRAINER_GROUP_WAIT_S``; then the samples that came are scored as a partial group). The group is
scored once: the reward service judges every output (``POST /v1/judge``) while the embedder measures
the group's redundancy (``POST /v1/redundancy``), and COMPEER's rule combines them (eq. 5-7, the
variant of ``TRAINER_REDUNDANCY_VARIANT``).

Every sample gets a float reward and the numeric ``extra_logs`` of
:data:`services.openrlhf.EXTRA_LOG_KEYS`, the same as the reward service's ``/openrlhf/reward``.
Nothing here raises into OpenRLHF (a failed reward crashes its training step): a judge failure or a
deadline gives the flagged fallback reward, an embedder failure an unweighted reward.

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

from embedder.protocol import RedundancyGroup, RedundancyRequest, RedundancyResponse
from reward_server.protocol import JudgeItem, JudgeRequest, JudgeResult
from services.candidate_parser import parse_candidate
from services.clients import ClientError, EmbedderClient, RewardClient, ServiceResponseError
from services.esc_schema import SCHEMAS
from services.gathering import Group, GroupGatherer, score_by_kind
from services.openrlhf import (
    PromptLabel,
    Redundancy,
    SampleReward,
    fallback_sample,
    group_key,
    judge_kind,
    parse_label,
    sample_reward,
)
from services.redundancy import DEFAULT_ALPHA, DEFAULT_BETA, LengthUnit, Variant

logger = logging.getLogger(__name__)


class AgentSettings(BaseSettings):
    """The agent executor's settings, from ``TRAINER_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="TRAINER_", extra="ignore")

    reward_url: str = Field("http://127.0.0.1:8000", description="The reward service (POST /v1/judge).")
    embedder_url: str | None = Field(
        "http://127.0.0.1:8001", description="The embedding service (POST /v1/redundancy); empty: no reweighting."
    )
    reward_api_key: SecretStr | None = Field(None, description="Bearer key of the reward service.")
    embedder_api_key: SecretStr | None = Field(None, description="Bearer key of the embedding service.")
    group_wait_s: float = Field(
        120.0,
        gt=0,
        description="How long a sample waits for its group's siblings (the spread of their generation times).",
    )
    group_flush_ms: float = Field(
        10.0, ge=0, description="How long a complete group waits for others, to be scored with them in one call."
    )
    max_items_per_call: int = Field(
        256, ge=1, description="Most outputs per judge call (keep it within REWARD_MAX_ITEMS_PER_REQUEST)."
    )
    judge_timeout_s: float = Field(120.0, gt=0, description="Deadline of the group's judge call.")
    embedder_timeout_s: float = Field(10.0, gt=0, description="Deadline of the group's redundancy call.")
    fallback_reward: float = Field(0.0, allow_inf_nan=False, description="Reward of a sample the judge did not score.")
    redundancy_variant: Variant = Field("paper", description="paper (eq. 5 as printed) or sign_aware.")
    redundancy_alpha: float = Field(DEFAULT_ALPHA, ge=0, description="Steepness of the length gate tau.")
    redundancy_beta: float = Field(DEFAULT_BETA, ge=0, description="Reply length at which tau is 1/2.")
    redundancy_length_unit: LengthUnit = Field("words", description="Reply length in words or embedder tokens.")


class GroupScorer:
    """Scores GRPO groups through both services; never raises.

    Args:
        settings: where the services are and how to combine their answers.
        reward: a ready reward client (tests); built from the settings when None.
        embedder: a ready embedder client (tests); built from the settings when None.
    """

    def __init__(
        self, settings: AgentSettings, reward: RewardClient | None = None, embedder: EmbedderClient | None = None
    ) -> None:
        self.settings = settings
        self.reward = reward or RewardClient(
            settings.reward_url,
            api_key=settings.reward_api_key.get_secret_value() if settings.reward_api_key else None,
            timeout_s=settings.judge_timeout_s,
        )
        self.embedder = embedder
        if embedder is None and settings.embedder_url:
            self.embedder = EmbedderClient(
                settings.embedder_url,
                api_key=settings.embedder_api_key.get_secret_value() if settings.embedder_api_key else None,
                timeout_s=settings.embedder_timeout_s,
                retries=2,
                backoff_s=0.05,
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
        """Judge and reweight closed groups: per schema and mode, one judge and one redundancy call."""
        return await score_by_kind(groups, judge_kind, self._score_call)

    async def _score_call(self, groups: list[Group[PromptLabel, str, SampleReward]]) -> list[list[SampleReward]]:
        judged, redundancy = await asyncio.gather(self._judge(groups), self._redundancy(groups))
        s = self.settings
        results = iter(judged)
        out = []
        for g, group in enumerate(groups):
            scored = []
            for index in range(len(group.items)):
                weight = None
                if redundancy is not None:
                    r = redundancy.groups[g]
                    weight = Redundancy(s_in=r.s_in[index], s_hi=r.s_hi[index], tau=r.tau, weight=r.weights[index])
                scored.append(
                    sample_reward(
                        next(results),
                        weight,
                        variant=s.redundancy_variant,
                        fallback_reward=s.fallback_reward,
                        group_fill=group.fill,
                    )
                )
            out.append(scored)
        return out

    async def _judge(self, groups: list[Group[PromptLabel, str, SampleReward]]) -> list[JudgeResult | None]:
        """Each output's judgment, None where there is none (the reason is logged).

        A call the reward service refuses as a whole (413, 422: an output over its limits) is retried
        group by group, so one bad output costs only its own group its rewards.
        """
        first = groups[0].context
        items = [
            JudgeItem(history=g.context.history, candidate=o, reference=g.context.reference)
            for g in groups
            for o in g.items
        ]
        request = JudgeRequest(schema_name=first.schema_name, mode=first.mode, items=items)
        timeout = self.settings.judge_timeout_s
        try:
            answer = await asyncio.wait_for(self.reward.judge(request, timeout_s=timeout), timeout)
        except ServiceResponseError as exc:
            if exc.status in (413, 422) and len(groups) > 1:
                parts = await asyncio.gather(*(self._judge([group]) for group in groups))
                return [result for part in parts for result in part]
            logger.warning("%d groups were not judged (%s): fallback rewards", len(groups), exc)
            return [None] * len(items)
        except (ClientError, TimeoutError) as exc:
            logger.warning("%d groups were not judged (%s): fallback rewards", len(groups), exc or "timeout")
            return [None] * len(items)
        if len(answer.results) != len(items):
            logger.warning("the reward service answered %d results for %d outputs", len(answer.results), len(items))
            return [None] * len(items)
        return list(answer.results)

    async def _redundancy(self, groups: list[Group[PromptLabel, str, SampleReward]]) -> RedundancyResponse | None:
        if self.embedder is None:
            return None
        schema = SCHEMAS[groups[0].context.schema_name]
        s = self.settings
        request = RedundancyRequest(
            groups=[
                RedundancyGroup(
                    candidates=[parse_candidate(o, schema).response or o for o in g.items],
                    history=[m.content for m in g.context.history],
                )
                for g in groups
            ],
            alpha=s.redundancy_alpha,
            beta=s.redundancy_beta,
            length_unit=s.redundancy_length_unit,
        )
        try:
            answer = await asyncio.wait_for(
                self.embedder.redundancy(request, timeout_s=s.embedder_timeout_s), s.embedder_timeout_s
            )
        except (ClientError, TimeoutError) as exc:
            logger.warning("%d groups are unweighted (%s)", len(groups), exc or "timeout")
            return None
        if [len(out.weights) for out in answer.groups] != [len(g.items) for g in groups]:
            logger.warning("the embedding service's answer does not match the groups sent")
            return None
        return answer

    async def aclose(self) -> None:
        """Fallback rewards for waiting samples, then close the clients."""
        await self.gatherer.close()
        await self.reward.aclose()
        if self.embedder is not None:
            await self.embedder.aclose()


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
