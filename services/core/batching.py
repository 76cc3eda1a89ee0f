"""A micro-batcher: work from concurrent requests, gathered into batches for one model call.

Requests put ``(items, future)`` entries on an asyncio queue; one consumer takes entries until the
batch is full (``max_batch_size`` items, or ``max_batch_cost`` if a cost function is given, e.g. a
token budget) or ``max_wait_s`` has passed since the first entry arrived, skips entries whose request
was cancelled, and hands the batch to an async handler. Work that queues while the handler is busy
joins the next batch as soon as the handler is free, without waiting (continuous batching), so even
``max_wait_s = 0`` gathers concurrent requests under load and adds no latency to a lone request.
Blocking model work belongs in the handler's executor (``asyncio.to_thread``), never on the event
loop. A full queue refuses new work at once with :class:`QueueFullError` (an overload, which the
services answer with 429), like TEI's
queue and infinity's batch handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from services.core.errors import NotReadyError, OverloadedError

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger(__name__)


class QueueFullError(OverloadedError):
    """The batcher's queue holds ``max_queued_items`` already."""


@dataclass
class _Entry(Generic[T, R]):
    items: list[T]
    future: asyncio.Future[list[R]]
    cost: int
    enqueued: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class BatchStats:
    """What one handler call saw, for metrics."""

    items: int
    entries: int
    cost: int
    queue_wait_s: float


class MicroBatcher(Generic[T, R]):
    """Gather items of concurrent requests into batches for one handler.

    Args:
        handler: async function called with a batch; returns one result per item, in order.
        max_batch_size: most items in a batch.
        max_wait_s: how long the first entry of a batch waits for company.
        max_queued_items: items waiting beyond which :meth:`submit` raises :class:`QueueFullError`.
        cost: an item's cost (e.g. its token count); with ``max_batch_cost`` it bounds a batch.
        max_batch_cost: the cost budget of a batch (a batch always takes at least one entry).
        max_concurrent_batches: batches the handler may run at once (1 for a model on one device;
            more for engines with their own scheduler, such as vLLM or a remote server).
        on_batch: called after each batch with its :class:`BatchStats` (metrics).
    """

    def __init__(
        self,
        handler: Callable[[list[T]], Awaitable[list[R]]],
        *,
        max_batch_size: int = 32,
        max_wait_s: float = 0.005,
        max_queued_items: int = 4096,
        cost: Callable[[T], int] | None = None,
        max_batch_cost: int | None = None,
        max_concurrent_batches: int = 1,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        if max_batch_size < 1 or max_queued_items < 1 or max_concurrent_batches < 1:
            raise ValueError("max_batch_size, max_queued_items and max_concurrent_batches must be >= 1")
        self._handler = handler
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queued_items = max_queued_items
        self._cost = cost
        self.max_batch_cost = max_batch_cost
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Entry[T, R]] = asyncio.Queue()
        self._queued_items = 0
        self._slots = asyncio.Semaphore(max_concurrent_batches)
        self._consumer: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._held: _Entry[T, R] | None = None
        self._forming: list[_Entry[T, R]] = []

    @property
    def queued_items(self) -> int:
        """Items waiting for a batch."""
        return self._queued_items

    def start(self) -> None:
        """Start the consumer on the running loop."""
        if self._consumer is None:
            self._consumer = asyncio.get_running_loop().create_task(self._consume(), name="micro-batcher")

    async def close(self) -> None:
        """Stop the consumer, fail what is still queued and wait for running batches."""
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
            self._consumer = None
        pending = [*self._forming, *([self._held] if self._held is not None else [])]
        self._held, self._forming = None, []
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for entry in pending:
            if not entry.future.done():
                entry.future.set_exception(NotReadyError("the service is shutting down"))
        self._queued_items = 0
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _item_cost(self, item: T) -> int:
        return self._cost(item) if self._cost is not None else 1

    async def submit(self, items: Sequence[T]) -> list[R]:
        """Queue ``items`` and wait for their results.

        A request larger than ``max_batch_size`` is cut into entries that may run in different
        batches; its results come back in order.

        Raises:
            QueueFullError: the queue cannot take ``items`` now.
            NotReadyError: the batcher is not running.
        """
        if not items:
            return []
        if self._consumer is None or self._consumer.done():
            raise NotReadyError("the batcher is not running")
        if self._queued_items + len(items) > self.max_queued_items:
            raise QueueFullError(
                f"the queue is full ({self._queued_items} items waiting, limit {self.max_queued_items}); retry later"
            )
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[list[R]]] = []
        for start in range(0, len(items), self.max_batch_size):
            chunk = list(items[start : start + self.max_batch_size])
            entry = _Entry(chunk, loop.create_future(), sum(self._item_cost(i) for i in chunk))
            futures.append(entry.future)
            self._queued_items += len(chunk)
            self._queue.put_nowait(entry)
        try:
            parts = await asyncio.gather(*futures)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        return [result for part in parts for result in part]

    async def _next_live(self, timeout: float | None) -> _Entry[T, R] | None:
        """The next entry whose request still waits; None when ``timeout`` passes first (at once for 0)."""
        while True:
            if self._held is not None:
                entry, self._held = self._held, None
            elif timeout is None:
                entry = await self._queue.get()
            elif timeout <= 0 or not self._queue.empty():
                try:
                    entry = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    return None
            else:
                try:
                    entry = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    return None
            if entry.future.done():  # cancelled by its request: skip the work
                self._queued_items -= len(entry.items)
                continue
            return entry

    def _fits(self, size: int, cost: int, entry: _Entry[T, R]) -> bool:
        too_big = size + len(entry.items) > self.max_batch_size
        over_budget = self.max_batch_cost is not None and cost + entry.cost > self.max_batch_cost
        return not (too_big or over_budget)

    async def _fill(self, batch: list[_Entry[T, R]], deadline: float) -> None:
        """Add entries to ``batch`` until it is full or ``deadline`` passes (entries already queued
        join even after the deadline)."""
        size, cost = sum(len(e.items) for e in batch), sum(e.cost for e in batch)
        while size < self.max_batch_size:
            entry = await self._next_live(deadline - time.monotonic())
            if entry is None:
                return
            if not self._fits(size, cost, entry):
                self._held = entry  # starts the next batch
                return
            batch.append(entry)
            size, cost = size + len(entry.items), cost + entry.cost

    async def _collect(self) -> list[_Entry[T, R]]:
        """Gather the next batch in ``self._forming``, where :meth:`close` can find it."""
        first = await self._next_live(None)
        assert first is not None
        self._forming = batch = [first]
        await self._fill(batch, time.monotonic() + self.max_wait_s)
        return batch

    async def _consume(self) -> None:
        while True:
            batch = await self._collect()
            await self._slots.acquire()  # items stay counted as queued until their batch runs
            # While the previous batch ran, more work may have queued: it joins now, without waiting.
            await self._fill(batch, 0.0)
            self._forming = []
            self._queued_items -= sum(len(e.items) for e in batch)
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[_Entry[T, R]]) -> None:
        try:
            live = [e for e in batch if not e.future.done()]
            if not live:
                return
            items = [item for e in live for item in e.items]
            if self._on_batch is not None:
                wait = time.monotonic() - min(e.enqueued for e in live)
                self._on_batch(BatchStats(len(items), len(live), sum(e.cost for e in live), wait))
            try:
                results = await self._handler(items)
                if len(results) != len(items):
                    raise RuntimeError(f"batch handler returned {len(results)} results for {len(items)} items")
            except Exception as exc:  # every waiting request learns of the failure
                logger.exception("batch of %d items failed", len(items))
                for e in live:
                    if not e.future.done():
                        e.future.set_exception(exc)
                return
            offset = 0
            for e in live:
                if not e.future.done():
                    e.future.set_result(list(results[offset : offset + len(e.items)]))
                offset += len(e.items)
        finally:
            self._slots.release()
