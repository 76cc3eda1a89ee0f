"""HTTP routes of the reward service (HTTP only: the work is in the ``serving_*`` modules)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from reward_server.serving_judge import JudgeService
from reward_server.serving_openrlhf import OpenRLHFGatherer
from reward_server.serving_rewards import GroupRewardService
from services.contracts.openrlhf import OpenRLHFRewardRequest, OpenRLHFRewardResponse
from services.contracts.reward import (
    FieldOut,
    JudgeRequest,
    JudgeResponse,
    RewardsRequest,
    RewardsResponse,
    SchemaList,
    SchemaOut,
    StepOut,
)
from services.core.judge_prompts import TEMPLATE_VERSION
from services.core.schemas import RESPONSE_TAG, SCHEMAS
from services.serving.app import require_ready
from services.serving.http import error_responses

router = APIRouter()
_ERRORS = error_responses(400, 401, 413, 422, 429, 503)


async def get_service(request: Request) -> JudgeService:
    """The judge service, once the backend is loaded."""
    require_ready(request)
    service: JudgeService = request.app.state.service
    return service


ServiceDep = Annotated[JudgeService, Depends(get_service)]


async def get_group_service(request: Request) -> GroupRewardService:
    """The group reward service, once the backend is loaded."""
    require_ready(request)
    service: GroupRewardService = request.app.state.group_service
    return service


GroupServiceDep = Annotated[GroupRewardService, Depends(get_group_service)]


async def get_gatherer(request: Request) -> OpenRLHFGatherer:
    """The group gatherer of /openrlhf/reward, once the backend is loaded."""
    require_ready(request)
    gatherer: OpenRLHFGatherer = request.app.state.openrlhf
    return gatherer


GathererDep = Annotated[OpenRLHFGatherer, Depends(get_gatherer)]


@router.get("/v1/schemas", response_model=SchemaList)
async def schemas() -> SchemaList:
    """Every reasoning schema: step names, allowed field values and one complete example candidate."""
    return SchemaList(
        template_version=TEMPLATE_VERSION,
        schemas=[
            SchemaOut(
                name=s.name,
                title=s.title,
                response_tag=RESPONSE_TAG,
                example=s.example,
                steps=[
                    StepOut(
                        name=st.name,
                        title=st.title,
                        description=st.description,
                        fields=[
                            FieldOut(name=f.name, values=list(f.values), description=f.description) for f in st.fields
                        ],
                    )
                    for st in s.steps
                ],
            )
            for s in SCHEMAS.values()
        ],
    )


@router.post("/v1/judge", response_model=JudgeResponse, responses=_ERRORS)
async def judge(body: JudgeRequest, service: ServiceDep) -> JudgeResponse:
    """Judge candidates: per-step verdicts, the reply preference, format completeness and the reward."""
    return await service.judge(body)


@router.post("/v1/rewards", response_model=RewardsResponse, responses=_ERRORS)
async def rewards(body: RewardsRequest, service: GroupServiceDep) -> RewardsResponse:
    """Rewards of GRPO groups: each output judged, then reweighted by its redundancy (COMPEER eq. 5-7).

    The reward service asks the embedding service for each group's redundancy while it judges. When
    the embedder is down or slow, rewards come back unweighted with ``redundancy`` saying why.
    """
    return await service.rewards(body)


@router.post("/openrlhf/reward", response_model=OpenRLHFRewardResponse, responses=_ERRORS)
async def openrlhf_reward(body: OpenRLHFRewardRequest, gatherer: GathererDep) -> OpenRLHFRewardResponse:
    """OpenRLHF's remote reward protocol (``--reward.remote_url``), with GRPO groups gathered back.

    OpenRLHF sends each sampled reply alone. Each sample waits here for its group's siblings (the
    label's ``group_id`` and ``group_size``; at most ``REWARD_COHORT_WAIT_S``), the group is judged
    and reweighted by redundancy as in ``/v1/rewards``, and each request gets its own samples'
    rewards within ``REWARD_OPENRLHF_DEADLINE_S``. A sample that could not be judged gets the
    fallback reward with ``fallback`` = 1 in ``extra_logs``.
    """
    return await gatherer.reward(body)
