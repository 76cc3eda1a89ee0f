"""A bounded cache of history-utterance embeddings, shared by concurrent requests.

Every sample of a GRPO group, and every later turn of the same dialogue, sends the same history, so
the embedder keeps its vectors keyed by a hash of the text, least recently used first out. Requests
that need a text another request is embedding right now wait for that work instead of repeating it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

import numpy as np

from embedder.backends.base import FloatArray


def text_key(text: str) -> bytes:
    """The cache key of a text: a 128-bit BLAKE2b digest of its UTF-8 bytes."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class EmbeddingCache:
    """An LRU map from text hashes to unit vectors, with in-flight sharing.

    Args:
        max_entries: vectors kept; 0 keeps none (in-flight sharing still applies).
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._vectors: OrderedDict[bytes, FloatArray] = OrderedDict()
        self._in_flight: dict[bytes, asyncio.Future[FloatArray]] = {}

    def __len__(self) -> int:
        return len(self._vectors)

    def _put(self, key: bytes, vector: FloatArray) -> None:
        if self.max_entries <= 0:
            return
        self._vectors[key] = vector
        self._vectors.move_to_end(key)
        while len(self._vectors) > self.max_entries:
            self._vectors.popitem(last=False)

    async def get_or_embed(
        self, texts: Sequence[str], embed: Callable[[list[str]], Awaitable[FloatArray]]
    ) -> tuple[FloatArray, int]:
        """Vectors of ``texts``, embedding only what neither the cache nor another request has.

        Args:
            texts: the texts, repeats allowed.
            embed: embeds a list of distinct texts (one call per request at most).

        Returns:
            The vectors in input order, shape (len(texts), d), and how many distinct texts were hits
            (found cached or being embedded by another request).

        Raises:
            Exception: whatever ``embed`` raised (requests waiting on this work get it too).
        """
        if not texts:
            return np.zeros((0, 0), dtype=np.float32), 0
        keys = [text_key(t) for t in texts]
        found: dict[bytes, FloatArray] = {}
        waiting: dict[bytes, asyncio.Future[FloatArray]] = {}
        mine: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key in found or key in waiting or key in mine:
                continue
            if (vector := self._vectors.get(key)) is not None:
                self._vectors.move_to_end(key)
                found[key] = vector
            elif (future := self._in_flight.get(key)) is not None:
                waiting[key] = future
            else:
                mine[key] = text
        hits = len(found) + len(waiting)
        if mine:
            found.update(await self._embed_mine(mine, embed))
        for key, future in waiting.items():
            try:
                found[key] = await asyncio.shield(future)
            except asyncio.CancelledError:
                if not future.cancelled():  # this request itself was cancelled
                    raise
                # the request embedding it went away: embed it here
                text = texts[keys.index(key)]
                found.update(await self._embed_mine({key: text}, embed))
        return np.stack([found[k] for k in keys]), hits

    async def _embed_mine(
        self, mine: dict[bytes, str], embed: Callable[[list[str]], Awaitable[FloatArray]]
    ) -> dict[bytes, FloatArray]:
        loop = asyncio.get_running_loop()
        futures = {key: loop.create_future() for key in mine if key not in self._in_flight}
        self._in_flight.update(futures)
        try:
            vectors = await embed(list(mine.values()))
        except BaseException as exc:
            for future in futures.values():
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                    future.exception()  # marked as seen: no request may be waiting on it
                else:
                    future.cancel()
            raise
        finally:
            for key in futures:
                self._in_flight.pop(key, None)
        result = dict(zip(mine, vectors, strict=True))
        for key, vector in result.items():
            self._put(key, vector)
            if key in futures:
                futures[key].set_result(vector)
        return result
