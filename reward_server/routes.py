"""HTTP routes of the reward service (HTTP only: the work is in :mod:`reward_server.serving`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from reward_server.protocol import (
    FieldOut,
    Health,
    JudgeRequest,
    JudgeResponse,
    ModelCard,
    ModelList,
    SchemaList,
    SchemaOut,
    StepOut,
)
from reward_server.serving import JudgeService
from services.errors import ServiceUnavailableError
from services.esc_schema import RESPONSE_TAG, SCHEMAS
from services.http import ErrorResponse, HttpMetrics
from services.judge_protocol import TEMPLATE_VERSION

router = APIRouter()
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Malformed JSON",
        401: "Missing or wrong API key",
        413: "Too many items or too large a body",
        422: "Invalid request",
        429: "Queue full; retry with backoff",
        503: "Backend not ready",
    }.items()
}


def get_service(request: Request) -> JudgeService:
    """The judge service, once the backend is loaded."""
    state = request.app.state
    if state.load_status != "ok":
        raise ServiceUnavailableError(f"the {state.service.backend.name} backend is {state.load_status}")
    service: JudgeService = state.service
    return service


ServiceDep = Annotated[JudgeService, Depends(get_service)]


def _health(request: Request) -> Health:
    service: JudgeService = request.app.state.service
    return Health(status=request.app.state.load_status, backend=service.backend.name, model=service.backend.model)


@router.get("/health", response_model=Health)
async def health(request: Request) -> Health:
    """The process is alive (the backend may still be loading)."""
    return _health(request)


@router.get("/ready", response_model=Health, responses={503: {"model": Health}})
async def ready(request: Request) -> Response:
    """The backend is loaded and warmed up; 503 before."""
    body = _health(request)
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics."""
    http_metrics: HttpMetrics = request.app.state.http_metrics
    return http_metrics.render()


@router.get("/v1/models", response_model=ModelList)
async def models(request: Request) -> ModelList:
    """The judge model this service runs."""
    service: JudgeService = request.app.state.service
    return ModelList(data=[ModelCard(id=service.backend.model, backend=service.backend.name)])


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
