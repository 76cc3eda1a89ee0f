"""HTTP routes of the embedding service (HTTP only: the work is in :mod:`embedder.serving`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from embedder.serving import EmbeddingService
from services.contracts.embedder import EmbeddingRequest, EmbeddingResponse, RedundancyRequest, RedundancyResponse
from services.serving.app import require_ready
from services.serving.http import error_responses

router = APIRouter()
_ERRORS = error_responses()


async def get_service(request: Request) -> EmbeddingService:
    """The embedding service, once the model is loaded."""
    require_ready(request)
    service: EmbeddingService = request.app.state.service
    return service


ServiceDep = Annotated[EmbeddingService, Depends(get_service)]


@router.post("/v1/embeddings", response_model=EmbeddingResponse, responses=_ERRORS)
async def embeddings(body: EmbeddingRequest, service: ServiceDep) -> Response:
    """Embed texts (OpenAI-compatible): unit-length vectors in input order, with token usage."""
    result = await service.embeddings(body)
    # The vectors were built by the service: serialise once, without validating them again.
    return Response(result.model_dump_json(), media_type="application/json")


@router.post("/v1/redundancy", response_model=RedundancyResponse, responses=_ERRORS)
async def redundancy(body: RedundancyRequest, service: ServiceDep) -> RedundancyResponse:
    """Per group of replies: s_in, s_hi, the length gate tau and the weights of COMPEER's eq. 5-7."""
    return await service.redundancy(body)
