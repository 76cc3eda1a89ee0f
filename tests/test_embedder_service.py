"""The embedding service in-process on the fake backend: OpenAI shape, redundancy, cache, batching, errors."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
from typing import Any

import httpx
import numpy as np
import pytest

from embedder.app import create_app
from embedder.backends.fake import FakeEmbedder
from embedder.settings import EmbedderSettings
from tests.support import error_of, in_process

HISTORY = ["I'm afraid I will lose my job.", "That sounds frightening. What happened?", "My job is not protected."]


def serve(backend: Any = None, **settings: Any) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    """The embedder on the fake backend, in-process and ready."""
    app = create_app(EmbedderSettings(_env_file=None, backend="fake", **settings), backend=backend or FakeEmbedder())
    return in_process(app)


def gate(length: float, alpha: float = 0.5, beta: float = 5.0) -> float:
    return 1 / (1 + math.exp(-alpha * (length - beta)))


async def test_embeddings_answer_the_openai_shape_in_input_order() -> None:
    texts = ["I hear you.", "That sounds really hard to carry alone.", ""]
    async with serve() as client:
        response = await client.post("/v1/embeddings", json={"model": "fake-embedder", "input": texts})
        one = await client.post("/v1/embeddings", json={"input": texts[1]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and body["model"] == "fake-embedder"
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    assert all(d["object"] == "embedding" and len(d["embedding"]) == 384 for d in body["data"])
    assert all(np.linalg.norm(d["embedding"]) == pytest.approx(1.0, abs=1e-5) for d in body["data"])
    assert body["usage"] == {"prompt_tokens": 3 + 2 + 7 + 2 + 0 + 2, "total_tokens": 16}
    assert one.json()["data"][0]["embedding"] == body["data"][1]["embedding"]


async def test_base64_encoding_carries_the_same_float32_vectors() -> None:
    async with serve() as client:
        floats = (await client.post("/v1/embeddings", json={"input": ["a b", "c"]})).json()
        packed = (await client.post("/v1/embeddings", json={"input": ["a b", "c"], "encoding_format": "base64"})).json()
    for f, p in zip(floats["data"], packed["data"], strict=True):
        decoded = np.frombuffer(base64.b64decode(p["embedding"]), dtype="<f4")
        np.testing.assert_allclose(decoded, f["embedding"], rtol=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"input": "x", "model": "text-embedding-3-small"}, 404, "model_not_found", None),  # another model
        ({"input": [101, 2023, 102]}, 422, "unsupported_input", "input"),  # token ids
        ({"input": [[101, 102]]}, 422, "unsupported_input", "input"),  # batches of token ids
        ({"input": []}, 422, "invalid_value", "input"),  # nothing to embed
        ({"input": "x", "dimensions": 256}, 422, "unsupported_dimensions", "dimensions"),  # no truncation
        ({"input": ["x"] * 9}, 413, "request_too_large", "input"),  # over max_texts_per_request
        ({"input": ["x", "y" * 101]}, 422, "string_too_long", "input.1"),  # over max_text_chars
        ({"input": "x", "encoding_format": "int8"}, 422, "literal_error", "encoding_format"),  # unknown format
        ({"input": "x", "truncate": True}, 422, "extra_forbidden", "truncate"),  # nothing is dropped silently
        ({"texts": ["x"]}, 422, "missing", "input"),  # the wrong field name
    ],
)
async def test_bad_embedding_requests_get_the_envelope(
    body: dict[str, Any], status: int, code: str, param: Any
) -> None:
    async with serve(max_texts_per_request=8, max_text_chars=100) as client:
        response = await client.post("/v1/embeddings", json=body)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code and error["param"] == param and error["message"]


async def test_four_identical_replies_are_fully_redundant_and_weights_follow_the_formulas() -> None:
    replies = ["I am so sorry you are going through this right now."] * 4
    async with serve() as client:
        response = await client.post("/v1/redundancy", json={"groups": [{"candidates": replies, "history": HISTORY}]})
    assert response.status_code == 200, response.text
    (group,) = response.json()["groups"]
    assert group["id"] == "0"
    assert group["s_in"] == pytest.approx([1.0] * 4, abs=1e-5)
    assert group["mean_length"] == 11
    assert group["tau"] == pytest.approx(gate(11))
    expected = [
        1 / ((1 + group["tau"] * a) * (1 + group["tau"] * max(b, 0)))
        for a, b in zip(*(group[k] for k in ("s_in", "s_hi")), strict=True)
    ]
    assert group["weights"] == pytest.approx(expected)
    assert all(w < 0.51 for w in group["weights"])


async def test_distinct_replies_are_less_redundant_and_parameters_are_honoured() -> None:
    group = {
        "id": "g",
        "candidates": ["Have you talked to HR?", "That must be frightening.", "What would help most right now?"],
        "history": [{"role": "seeker", "content": HISTORY[0]}, HISTORY[1]],
    }
    body = {"groups": [group], "alpha": 1.0, "beta": 3.0, "length_unit": "tokens"}
    async with serve() as client:
        response = await client.post("/v1/redundancy", json=body)
    out = response.json()
    assert (out["alpha"], out["beta"], out["length_unit"]) == (1.0, 3.0, "tokens")
    (scored,) = out["groups"]
    assert scored["id"] == "g" and scored["mean_length"] == pytest.approx(5.0)
    assert scored["tau"] == pytest.approx(gate(5.0, 1.0, 3.0))
    assert all(s < 0.5 for s in scored["s_in"])
    assert all(w > 0.6 for w in scored["weights"])


async def test_a_group_of_one_without_history_has_no_redundancy() -> None:
    async with serve() as client:
        response = await client.post("/v1/redundancy", json={"groups": [{"candidates": ["Just me."]}]})
    (group,) = response.json()["groups"]
    assert group["s_in"] == [0.0] and group["s_hi"] == [0.0] and group["weights"] == [1.0]


async def test_history_comes_from_the_cache_after_the_first_request() -> None:
    backend = FakeEmbedder()
    groups = [{"candidates": ["One reply.", "Another reply."], "history": HISTORY}]
    async with serve(backend) as client:
        first = (await client.post("/v1/redundancy", json={"groups": groups})).json()
        backend.batches.clear()
        second = (await client.post("/v1/redundancy", json={"groups": groups})).json()
        metrics = (await client.get("/metrics")).text
    assert first["usage"] == {"texts": 5, "embedded": 5, "cached": 0, "prompt_tokens": first["usage"]["prompt_tokens"]}
    assert second["usage"]["cached"] == 3 and second["usage"]["embedded"] == 2
    assert sorted(t for batch in backend.batches for t in batch) == ["Another reply.", "One reply."]
    assert second["groups"] == first["groups"]
    assert 'embedder_history_cache_lookups_total{outcome="hit"} 3.0' in metrics


async def test_concurrent_siblings_share_one_batch_and_embed_the_history_once() -> None:
    backend = FakeEmbedder(delay_s=0.05)
    async with serve(backend, batch_wait_ms=20) as client:
        bodies = [{"groups": [{"candidates": [f"Reply number {i}."], "history": HISTORY}]} for i in range(4)]
        responses = await asyncio.gather(*[client.post("/v1/redundancy", json=b) for b in bodies])
    assert all(r.status_code == 200 for r in responses)
    embedded = [t for batch in backend.batches for t in batch]
    assert sorted(embedded) == sorted(HISTORY + [f"Reply number {i}." for i in range(4)])
    assert len(backend.batches) <= 2


async def test_the_token_budget_splits_batches() -> None:
    backend = FakeEmbedder()
    texts = [" ".join(["word"] * 30)] * 6  # 32 tokens each
    async with serve(backend, max_batch_tokens=100, max_seq_length=64, batch_wait_ms=20) as client:
        await asyncio.gather(*[client.post("/v1/embeddings", json={"input": [t]}) for t in texts])
    assert [len(b) for b in backend.batches] == [3, 3]


async def test_backend_failure_is_a_502_and_the_service_recovers() -> None:
    backend = FakeEmbedder()
    async with serve(backend) as client:
        backend.fail = True
        failed = await client.post("/v1/embeddings", json={"input": "x"})
        backend.fail = False
        ok = await client.post("/v1/embeddings", json={"input": "x"})
    assert failed.status_code == 502 and error_of(failed)["type"] == "backend_error"
    assert ok.status_code == 200


async def test_full_queue_answers_429() -> None:
    backend = FakeEmbedder(delay_s=0.2)
    async with serve(backend, max_queued_items=2, max_batch_size=1) as client:
        responses = await asyncio.gather(*[client.post("/v1/embeddings", json={"input": ["a", "b"]}) for _ in range(4)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200 and statuses[-1] == 429
    assert error_of(next(r for r in responses if r.status_code == 429))["code"] == "queue_full"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"groups": []}, 422, "groups"),  # no group
        ({"groups": [{"candidates": []}]}, 422, "groups.0.candidates"),  # an empty group
        ({"groups": [{"candidates": ["a"]}] * 3}, 413, "groups"),  # over max_groups_per_request
        ({"groups": [{"candidates": ["a"] * 5}]}, 413, "groups.0.candidates"),  # over max_group_size
        ({"groups": [{"candidates": ["a"], "history": ["h"] * 5}]}, 413, "groups.0.history"),  # over the history cap
        ({"groups": [{"candidates": ["a"], "history": ["h" * 101]}]}, 422, "groups.0.history.0"),  # too long
        ({"groups": [{"candidates": ["a"]}], "alpha": -1}, 422, "alpha"),  # a negative gate
        ({"groups": [{"candidates": ["a"]}], "beta": "NaN"}, 422, "beta"),  # not a number
        ({"groups": [{"candidates": ["a"]}], "length_unit": "chars"}, 422, "length_unit"),
        ({"groups": [{"candidates": ["a"], "history": [{"role": "bot", "content": "x"}]}]}, 422, None),
    ],
)
async def test_bad_redundancy_requests_get_the_envelope(body: dict[str, Any], status: int, param: Any) -> None:
    async with serve(max_groups_per_request=2, max_group_size=4, max_history_messages=4, max_text_chars=100) as c:
        response = await c.post("/v1/redundancy", json=body)
    assert response.status_code == status, response.text
    error = error_of(response)
    if param is not None:
        assert error["param"] == param


class _SlowStart(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def start(self) -> None:
        await self.release.wait()


async def test_ready_waits_for_the_model_and_work_gets_503_meanwhile() -> None:
    backend = _SlowStart()
    app = create_app(EmbedderSettings(_env_file=None, backend="fake"), backend=backend)
    transport = httpx.ASGITransport(app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        health, ready = await c.get("/health"), await c.get("/ready")
        early = await c.post("/v1/embeddings", json={"input": "x"})
        backend.release.set()
        for _ in range(100):
            if (await c.get("/ready")).status_code == 200:
                break
            await asyncio.sleep(0.01)
        late = await c.post("/v1/embeddings", json={"input": "x"})
        models = (await c.get("/v1/models")).json()
    assert health.status_code == 200 and health.json()["status"] == "loading"
    assert ready.status_code == 503
    assert early.status_code == 503 and error_of(early)["code"] == "not_ready"
    assert late.status_code == 200
    assert models["data"][0] == {"id": "fake-embedder", "object": "model", "owned_by": "unifireward", "backend": "fake"}


async def test_api_keys_guard_work_but_not_health() -> None:
    async with serve(api_keys="k1,k2") as client:
        denied = await client.post("/v1/embeddings", json={"input": "x"})
        allowed = await client.post("/v1/embeddings", json={"input": "x"}, headers={"Authorization": "Bearer k2"})
        health = await client.get("/health")
    assert denied.status_code == 401 and error_of(denied)["type"] == "authentication_error"
    assert allowed.status_code == 200 and health.status_code == 200
