"""The embedding service: requests in, token-budgeted micro-batches, vectors and redundancy out."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from embedder.backends.base import EmbeddingBackend, EmbeddingBackendError, FloatArray
from embedder.cache import EmbeddingCache
from embedder.settings import EmbedderSettings
from services.contracts.embedder import (
    EmbeddingData,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
    GroupRedundancyOut,
    RedundancyRequest,
    RedundancyResponse,
    RedundancyUsage,
)
from services.core.batching import BatchStats, MicroBatcher
from services.core.errors import BackendFailureError, InvalidRequestError, LimitExceededError, NotFoundError
from services.core.redundancy import group_redundancy, word_count
from services.core.types import DialogueMessage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Text:
    text: str
    tokens: int


class EmbedderMetrics:
    """Embedder-specific Prometheus metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        ns = "embedder"
        self.texts = Counter("texts_embedded", "Texts the model encoded", namespace=ns, registry=registry)
        self.tokens = Counter("tokens_embedded", "Tokens the model read", namespace=ns, registry=registry)
        self.batch_size = Histogram(
            "batch_size", "Texts per model call", namespace=ns, registry=registry, buckets=(1, 4, 8, 16, 32, 64, 128)
        )
        self.batch_tokens = Histogram(
            "batch_tokens",
            "Tokens per model call",
            namespace=ns,
            registry=registry,
            buckets=(64, 256, 1024, 4096, 16384, 65536),
        )
        self.queue_wait = Histogram("queue_wait_seconds", "Time in the batch queue", namespace=ns, registry=registry)
        self.queued = Gauge("queued_texts", "Texts waiting for a batch", namespace=ns, registry=registry)
        self.cache = Counter(
            "history_cache_lookups", "History texts looked up, by outcome", ["outcome"], namespace=ns, registry=registry
        )
        self.cache_size = Gauge("history_cache_entries", "History vectors cached", namespace=ns, registry=registry)
        self.non_finite = Counter(
            "non_finite_batches",
            "Batches the model answered with NaN or infinite vectors (failed with 502)",
            namespace=ns,
            registry=registry,
        )

    def on_batch(self, stats: BatchStats) -> None:
        """Record one model call."""
        self.texts.inc(stats.items)
        self.tokens.inc(stats.cost)
        self.batch_size.observe(stats.items)
        self.batch_tokens.observe(stats.cost)
        self.queue_wait.observe(stats.queue_wait_s)


def _history_text(message: str | DialogueMessage) -> str:
    return message if isinstance(message, str) else message.content


class EmbeddingService:
    """Embeds texts with a backend behind a token-budgeted micro-batcher, and scores redundancy."""

    def __init__(self, backend: EmbeddingBackend, settings: EmbedderSettings, registry: CollectorRegistry) -> None:
        self.backend = backend
        self.settings = settings
        self.metrics = EmbedderMetrics(registry)
        self.cache = EmbeddingCache(settings.history_cache_size)
        self.batcher: MicroBatcher[_Text, FloatArray] = MicroBatcher(
            self._run_batch,
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.batch_wait_ms / 1000,
            max_queued_items=settings.max_queued_items,
            cost=lambda t: t.tokens,
            max_batch_cost=settings.max_batch_tokens,
            on_batch=self.metrics.on_batch,
        )
        self.metrics.queued.set_function(lambda: self.batcher.queued_items)
        self.metrics.cache_size.set_function(lambda: len(self.cache))

    async def _run_batch(self, items: list[_Text]) -> list[FloatArray]:
        try:
            vectors = await self.backend.embed([t.text for t in items])
        except EmbeddingBackendError as exc:
            raise BackendFailureError(f"the {self.backend.name} backend failed: {exc}") from exc
        if not np.isfinite(vectors).all():  # a NaN vector would make NaN redundancy and NaN rewards downstream
            self.metrics.non_finite.inc()
            logger.error("the %s backend gave non-finite vectors: the batch fails", self.backend.name)
            raise BackendFailureError(f"the {self.backend.name} backend gave non-finite vectors")
        return list(vectors)

    def _count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.backend.count_tokens(texts)

    async def _embed(self, texts: list[str]) -> tuple[FloatArray, int]:
        """Vectors of ``texts`` through the batcher, and the tokens read."""
        tokens = self._count_tokens(texts)
        rows = await self.batcher.submit([_Text(t, n) for t, n in zip(texts, tokens, strict=True)])
        if not rows:
            return np.zeros((0, self.backend.dimensions), dtype=np.float32), 0
        return np.stack(rows), sum(tokens)

    def _check_model(self, model: str | None) -> None:
        if model is not None and model != self.backend.model:
            raise NotFoundError(f"model {model!r} is not served here; this service runs {self.backend.model!r}")

    def _check_text(self, text: str, param: str) -> None:
        if len(text) > self.settings.max_text_chars:
            raise InvalidRequestError(
                f"{len(text)} characters; the limit is {self.settings.max_text_chars}",
                param=param,
                code="string_too_long",
            )

    def _input_texts(self, request: EmbeddingRequest) -> list[str]:
        raw = request.input
        if isinstance(raw, str):
            texts = [raw]
        elif not raw:
            raise InvalidRequestError("input must hold at least one text", param="input")
        elif all(isinstance(x, str) for x in raw):
            texts = [str(x) for x in raw]
        else:
            raise InvalidRequestError(
                "token-id input is not supported: send texts (ids only mean something to the tokenizer that made them)",
                param="input",
                code="unsupported_input",
            )
        if len(texts) > self.settings.max_texts_per_request:
            raise LimitExceededError(
                f"{len(texts)} texts in one request; the limit is {self.settings.max_texts_per_request}", param="input"
            )
        for i, text in enumerate(texts):
            self._check_text(text, f"input.{i}")
        return texts

    async def embeddings(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Embed the request's texts, OpenAI style.

        Raises:
            NotFoundError: another model is named (404).
            LimitExceededError: more texts than the settings allow (413).
            InvalidRequestError: token-id input, a text over the length limit, or other dimensions (422).
            QueueFullError: the batcher's queue is full (429).
            BackendFailureError: the model failed (502).
        """
        self._check_model(request.model)
        if request.dimensions is not None and request.dimensions != self.backend.dimensions:
            raise InvalidRequestError(
                f"this model gives {self.backend.dimensions} dimensions; {request.dimensions} were asked",
                param="dimensions",
                code="unsupported_dimensions",
            )
        texts = self._input_texts(request)
        if request.user is not None:
            logger.info("embeddings for user %r", request.user)
        vectors, tokens = await self._embed(texts)
        if request.encoding_format == "base64":
            data = [
                EmbeddingData.model_construct(index=i, embedding=base64.b64encode(v.astype("<f4").tobytes()).decode())
                for i, v in enumerate(vectors)
            ]
        else:
            data = [EmbeddingData.model_construct(index=i, embedding=v.tolist()) for i, v in enumerate(vectors)]
        return EmbeddingResponse.model_construct(
            data=data, model=self.backend.model, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
        )

    def _check_groups(self, request: RedundancyRequest) -> None:
        limits = self.settings
        if len(request.groups) > limits.max_groups_per_request:
            raise LimitExceededError(
                f"{len(request.groups)} groups in one request; the limit is {limits.max_groups_per_request}",
                param="groups",
            )
        for g, group in enumerate(request.groups):
            if len(group.candidates) > limits.max_group_size:
                raise LimitExceededError(
                    f"{len(group.candidates)} candidates; the limit is {limits.max_group_size}",
                    param=f"groups.{g}.candidates",
                )
            if len(group.history) > limits.max_history_messages:
                raise LimitExceededError(
                    f"{len(group.history)} history utterances; the limit is {limits.max_history_messages}",
                    param=f"groups.{g}.history",
                )
            for i, text in enumerate(group.candidates):
                self._check_text(text, f"groups.{g}.candidates.{i}")
            for i, message in enumerate(group.history):
                self._check_text(_history_text(message), f"groups.{g}.history.{i}")

    async def redundancy(self, request: RedundancyRequest) -> RedundancyResponse:
        """In-group and history redundancy of each group (COMPEER eq. 5-7).

        Candidates are embedded once per distinct text; history utterances come from the cache when
        another request (a sibling sample, an earlier turn) already sent them.

        Raises:
            NotFoundError: another model is named (404).
            LimitExceededError: more groups, candidates or utterances than the settings allow (413).
            InvalidRequestError: a text over the length limit (422).
            QueueFullError: the batcher's queue is full (429).
            BackendFailureError: the model failed (502).
        """
        self._check_model(request.model)
        self._check_groups(request)
        candidates = list(dict.fromkeys(t for g in request.groups for t in g.candidates))
        history = list(dict.fromkeys(_history_text(m) for g in request.groups for m in g.history))
        (cand_vecs, cand_tokens), (hist_vecs, hits, hist_tokens) = await asyncio.gather(
            self._embed(candidates), self._embed_history(history)
        )
        cand_index = {t: i for i, t in enumerate(candidates)}
        hist_index = {t: i for i, t in enumerate(history)}
        lengths = self._lengths(candidates, request.length_unit)
        groups = []
        for g, group in enumerate(request.groups):
            rows = [cand_index[t] for t in group.candidates]
            hist_rows = [hist_index[_history_text(m)] for m in group.history]
            hist = hist_vecs[hist_rows] if hist_rows else np.zeros((0, cand_vecs.shape[1]), dtype=np.float32)
            scored = group_redundancy(cand_vecs[rows], hist, [lengths[r] for r in rows], request.alpha, request.beta)
            groups.append(
                GroupRedundancyOut(
                    id=group.id if group.id is not None else str(g),
                    s_in=scored.s_in,
                    s_hi=scored.s_hi,
                    tau=scored.tau,
                    mean_length=scored.mean_length,
                    weights=scored.weights,
                )
            )
        usage = RedundancyUsage(
            texts=sum(len(g.candidates) + len(g.history) for g in request.groups),
            embedded=len(candidates) + len(history) - hits,
            cached=hits,
            prompt_tokens=cand_tokens + hist_tokens,
        )
        return RedundancyResponse(
            groups=groups,
            model=self.backend.model,
            alpha=request.alpha,
            beta=request.beta,
            length_unit=request.length_unit,
            usage=usage,
        )

    async def _embed_history(self, texts: list[str]) -> tuple[FloatArray, int, int]:
        """History vectors through the cache: (vectors, distinct texts found, tokens read for the rest)."""
        read = 0

        async def embed(missing: list[str]) -> FloatArray:
            nonlocal read
            vectors, read = await self._embed(missing)
            return vectors

        vectors, hits = await self.cache.get_or_embed(texts, embed)
        self.metrics.cache.labels("hit").inc(hits)
        self.metrics.cache.labels("miss").inc(len(texts) - hits)
        return vectors, hits, read

    def _lengths(self, texts: list[str], unit: str) -> list[int]:
        if unit == "tokens":
            return self.backend.reply_tokens(texts)
        return [word_count(t) for t in texts]
