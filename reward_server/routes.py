"""HTTP routes of the reward service (HTTP only: the work is in :mod:`reward_server.serving`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from reward_server.group_serving import GroupRewardService
from reward_server.protocol import (
    FieldOut,
    JudgeRequest,
    JudgeResponse,
    RewardsRequest,
    RewardsResponse,
    SchemaList,
    SchemaOut,
    StepOut,
)
from reward_server.serving import JudgeService
from services.esc_schema import RESPONSE_TAG, SCHEMAS
from services.http import error_responses
from services.judge_protocol import TEMPLATE_VERSION
from services.service_app import require_ready

router = APIRouter()
_ERRORS = error_responses(400, 401, 413, 422, 429, 503)


def get_service(request: Request) -> JudgeService:
    """The judge service, once the backend is loaded."""
    require_ready(request)
    service: JudgeService = request.app.state.service
    return service


ServiceDep = Annotated[JudgeService, Depends(get_service)]


def get_group_service(request: Request) -> GroupRewardService:
    """The group reward service, once the backend is loaded."""
    require_ready(request)
    service: GroupRewardService = request.app.state.group_service
    return service


GroupServiceDep = Annotated[GroupRewardService, Depends(get_group_service)]


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
