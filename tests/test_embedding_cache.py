"""The history cache: LRU bounds, in-flight sharing, failures and cancellations."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from embedder.cache import EmbeddingCache


class Recorder:
    """An embed function that records its calls and can be held or made to fail."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.error: Exception | None = None

    async def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(texts)
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return np.asarray([[float(len(t)), 1.0] for t in texts], dtype=np.float32)


async def test_repeats_and_hits_are_embedded_once() -> None:
    cache, embed = EmbeddingCache(10), Recorder()
    vectors, hits = await cache.get_or_embed(["a", "bb", "a"], embed)
    assert vectors[:, 0].tolist() == [1.0, 2.0, 1.0] and hits == 0
    vectors, hits = await cache.get_or_embed(["bb", "ccc"], embed)
    assert vectors[:, 0].tolist() == [2.0, 3.0] and hits == 1
    assert embed.calls == [["a", "bb"], ["ccc"]]


async def test_least_recently_used_goes_first() -> None:
    cache, embed = EmbeddingCache(2), Recorder()
    await cache.get_or_embed(["a", "b"], embed)
    await cache.get_or_embed(["a"], embed)  # "a" is now the most recent
    await cache.get_or_embed(["c"], embed)  # evicts "b"
    _, hits = await cache.get_or_embed(["a", "b"], embed)
    assert hits == 1 and embed.calls[-1] == ["b"] and len(cache) == 2


async def test_size_zero_keeps_nothing() -> None:
    cache, embed = EmbeddingCache(0), Recorder()
    await cache.get_or_embed(["a"], embed)
    _, hits = await cache.get_or_embed(["a"], embed)
    assert hits == 0 and len(cache) == 0 and len(embed.calls) == 2


async def test_concurrent_requests_wait_for_work_in_flight() -> None:
    cache, embed = EmbeddingCache(10), Recorder()
    embed.gate.clear()
    first = asyncio.create_task(cache.get_or_embed(["h1", "h2"], embed))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get_or_embed(["h2", "x"], embed))
    await asyncio.sleep(0)
    embed.gate.set()
    (v1, hits1), (v2, hits2) = await first, await second
    assert embed.calls == [["h1", "h2"], ["x"]]
    assert (hits1, hits2) == (0, 1)
    np.testing.assert_array_equal(v1[1], v2[0])


async def test_a_failure_reaches_the_waiters_and_is_not_cached() -> None:
    cache, embed = EmbeddingCache(10), Recorder()
    embed.gate.clear()
    embed.error = RuntimeError("model down")
    first = asyncio.create_task(cache.get_or_embed(["h"], embed))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get_or_embed(["h"], embed))
    await asyncio.sleep(0)
    embed.gate.set()
    for task in (first, second):
        with pytest.raises(RuntimeError, match="model down"):
            await task
    embed.error = None
    _, hits = await cache.get_or_embed(["h"], embed)
    assert hits == 0 and len(embed.calls) == 2


async def test_a_waiter_embeds_itself_when_the_owner_is_cancelled() -> None:
    cache, embed = EmbeddingCache(10), Recorder()
    embed.gate.clear()
    owner = asyncio.create_task(cache.get_or_embed(["h"], embed))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cache.get_or_embed(["h"], embed))
    await asyncio.sleep(0)
    owner.cancel()
    await asyncio.sleep(0)
    embed.gate.set()
    vectors, _ = await waiter
    assert vectors[:, 0].tolist() == [1.0] and len(embed.calls) == 2
    assert owner.cancelled()


async def test_empty_input() -> None:
    vectors, hits = await EmbeddingCache(4).get_or_embed([], Recorder())
    assert vectors.shape[0] == 0 and hits == 0
