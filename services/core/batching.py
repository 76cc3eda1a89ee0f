"""A micro-batcher: work from concurrent requests, gathered into batches for one model call.

Requests put ``(items, future)`` entries on an asyncio queue; one consumer takes entries until the
batch is full (``max_batch_size`` items, or ``max_batch_cost`` if a cost function is given, e.g. a
token budget) or ``max_wait_s`` has passed since the first entry arrived, skips entries whose request
was cancelled, and hands the batch to an async handler. Work that queues while the handler is busy
joins the next batch as soon as the handler is free, without waiting (continuous batching), so even
``max_wait_s = 0`` gathers concurrent requests under load and adds no latency to a lone request.
Blocking model work belongs in the handler's executor (``asyncio.to_thread``), never on the event
loop. A full queue refuses new work at once with :class:`QueueFullError` (an overload, which the
services answer with 429), like TEI's queue and infinity's batch handler. Work that already has a
deadline of its own (a gathered group) uses :meth:`MicroBatcher.submit_within` instead: it waits for
room, first come first served, in pieces the queue can hold, and is refused only when no room came
in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
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
class Submitted(Generic[R]):
    """What :meth:`MicroBatcher.submit_within` gives: the results, and how long the work waited for room."""

    results: list[R]
    room_wait_s: float


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
        # Submissions waiting for room, first come first served: (items needed, granted when room is reserved).
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def queued_items(self) -> int:
        """Items waiting for a batch."""
        return self._queued_items

    @property
    def waiting_for_room(self) -> int:
        """Submissions of :meth:`submit_within` waiting for room in the queue."""
        return sum(1 for _, granted in self._waiters if not granted.done())

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
        while self._waiters:
            _, granted = self._waiters.popleft()
            if not granted.done():
                granted.set_exception(NotReadyError("the service is shutting down"))
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
        self._check_running()
        if self.waiting_for_room or self._queued_items + len(items) > self.max_queued_items:
            raise QueueFullError(
                f"the queue is full ({self._queued_items} items waiting, limit {self.max_queued_items}); retry later"
            )
        futures = [self._put(chunk) for chunk in self._chunks(items, self.max_batch_size)]
        return await self._gather(futures)

    async def submit_within(self, items: Sequence[T], timeout_s: float) -> Submitted[R]:
        """Queue ``items``, waiting up to ``timeout_s`` for room, and wait for their results.

        Work with a deadline of its own (a gathered group that must be answered in time) is not
        refused because the queue is full, nor because it is larger than the queue: it waits for
        room behind earlier waiters, in pieces of at most ``min(max_batch_size, max_queued_items)``
        items, and each piece is queued as soon as it fits.

        Raises:
            QueueFullError: no room came within ``timeout_s`` (pieces already queued are withdrawn).
            NotReadyError: the batcher is not running, or closed while waiting.
        """
        if not items:
            return Submitted([], 0.0)
        self._check_running()
        started = time.monotonic()
        deadline = started + timeout_s
        waited = 0.0
        futures: list[asyncio.Future[list[R]]] = []
        try:
            for chunk in self._chunks(items, min(self.max_batch_size, self.max_queued_items)):
                waited += await self._reserve(len(chunk), deadline, ahead=bool(futures))
                futures.append(self._put(chunk, reserved=True))
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        return Submitted(await self._gather(futures), waited)

    def _check_running(self) -> None:
        if self._consumer is None or self._consumer.done():
            raise NotReadyError("the batcher is not running")

    @staticmethod
    def _chunks(items: Sequence[T], size: int) -> list[list[T]]:
        return [list(items[start : start + size]) for start in range(0, len(items), size)]

    def _put(self, chunk: list[T], reserved: bool = False) -> asyncio.Future[list[R]]:
        entry = _Entry(chunk, asyncio.get_running_loop().create_future(), sum(self._item_cost(i) for i in chunk))
        if not reserved:
            self._queued_items += len(chunk)
        self._queue.put_nowait(entry)
        return entry.future

    @staticmethod
    async def _gather(futures: list[asyncio.Future[list[R]]]) -> list[R]:
        try:
            parts = await asyncio.gather(*futures)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        return [result for part in parts for result in part]

    async def _reserve(self, n: int, deadline: float, ahead: bool = False) -> float:
        """Count ``n`` items as queued once they fit behind earlier waiters (before all of them when
        ``ahead``: the next piece of a submission keeps its place in line); the seconds it took.

        Raises:
            QueueFullError: no room before ``deadline``.
        """
        if (ahead or not self.waiting_for_room) and self._queued_items + n <= self.max_queued_items:
            self._queued_items += n
            return 0.0
        started = time.monotonic()
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if ahead:
            self._waiters.appendleft((n, granted))
        else:
            self._waiters.append((n, granted))
        try:
            await asyncio.wait({granted}, timeout=max(deadline - started, 0.0))
        except BaseException:  # cancelled while waiting: give back what was reserved, if anything
            if granted.done() and not granted.cancelled() and granted.exception() is None:
                self._release(n)
            else:
                granted.cancel()
                self._wake()
            raise
        if not granted.done():
            granted.cancel()
            self._wake()  # a smaller waiter behind this one may fit now
            raise QueueFullError(
                f"the queue stayed full ({self._queued_items} items waiting, limit {self.max_queued_items}) "
                f"for {deadline - started:.1f} s"
            )
        granted.result()  # raises NotReadyError when the batcher closed meanwhile
        return time.monotonic() - started

    def _release(self, n: int) -> None:
        """``n`` items left the queue: admit the waiters that fit now."""
        self._queued_items -= n
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            n, granted = self._waiters[0]
            if granted.done():
                self._waiters.popleft()
                continue
            if self._queued_items + n > self.max_queued_items:
                return
            self._waiters.popleft()
            self._queued_items += n  # reserved for the waiter, so nobody else takes the room meanwhile
            granted.set_result(None)

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
                self._release(len(entry.items))
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
            self._release(sum(len(e.items) for e in batch))
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
