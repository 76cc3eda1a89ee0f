"""The micro-batcher: ordering, closing rules, cancellation, overload, failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from services.core.batching import BatchStats, MicroBatcher, QueueFullError
from services.core.errors import NotReadyError
from services.serving.http import http_status


class Recorder:
    """A handler that records its batches and can be held until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.entered.set()
        await self.gate.wait()
        return [i * 10 for i in items]


@contextlib.asynccontextmanager
async def running(batcher: MicroBatcher[int, int]) -> AsyncIterator[MicroBatcher[int, int]]:
    batcher.start()
    try:
        yield batcher
    finally:
        await batcher.close()


async def test_concurrent_requests_share_a_batch_and_keep_their_order() -> None:
    rec = Recorder()
    async with running(MicroBatcher(rec, max_batch_size=8, max_wait_s=0.2)) as b:
        results = await asyncio.gather(b.submit([1, 2]), b.submit([3]), b.submit([4, 5, 6]))
    assert results == [[10, 20], [30], [40, 50, 60]]
    assert rec.batches == [[1, 2, 3, 4, 5, 6]]


async def test_batch_closes_at_size_and_large_requests_are_split_in_order() -> None:
    rec = Recorder()
    async with running(MicroBatcher(rec, max_batch_size=4, max_wait_s=0.05)) as b:
        assert await b.submit(list(range(10))) == [i * 10 for i in range(10)]
    assert [len(batch) for batch in rec.batches] == [4, 4, 2]


async def test_batch_closes_at_the_deadline_without_company() -> None:
    rec = Recorder()
    async with running(MicroBatcher(rec, max_batch_size=64, max_wait_s=0.01)) as b:
        assert await asyncio.wait_for(b.submit([7]), timeout=5) == [70]
    assert rec.batches == [[7]]


async def test_cost_budget_closes_a_batch() -> None:
    rec = Recorder()
    batcher = MicroBatcher(rec, max_batch_size=100, max_wait_s=0.2, cost=lambda i: i, max_batch_cost=10)
    async with running(batcher) as b:
        out = await asyncio.gather(b.submit([6]), b.submit([3]), b.submit([5]))
    assert out == [[60], [30], [50]]
    assert rec.batches == [[6, 3], [5]]  # 6+3 fits in 10, adding 5 would not


async def test_cancelled_request_is_skipped() -> None:
    rec = Recorder()
    rec.gate.clear()
    async with running(MicroBatcher(rec, max_batch_size=1, max_wait_s=0)) as b:
        first = asyncio.create_task(b.submit([1]))
        await rec.entered.wait()  # the first batch holds the handler
        doomed = asyncio.create_task(b.submit([2]))
        kept = asyncio.create_task(b.submit([3]))
        await asyncio.sleep(0.01)
        doomed.cancel()
        rec.gate.set()
        assert await first == [10]
        assert await kept == [30]
        with pytest.raises(asyncio.CancelledError):
            await doomed
    assert [2] not in rec.batches


async def test_full_queue_refuses_at_once() -> None:
    rec = Recorder()
    rec.gate.clear()
    async with running(MicroBatcher(rec, max_batch_size=1, max_wait_s=0, max_queued_items=2)) as b:
        first = asyncio.create_task(b.submit([1]))
        await rec.entered.wait()
        waiting = asyncio.create_task(b.submit([2, 3]))
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFullError) as err:
            await b.submit([4])
        assert http_status(err.value) == (429, "overloaded_error")  # the HTTP layer answers it with 429
        rec.gate.set()
        assert await first == [10]
        assert await waiting == [20, 30]


async def test_handler_failure_reaches_every_waiter_and_the_batcher_survives() -> None:
    calls = 0

    async def flaky(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return items

    async with running(MicroBatcher(flaky, max_batch_size=8, max_wait_s=0.1)) as b:
        outcomes = await asyncio.gather(b.submit([1]), b.submit([2]), return_exceptions=True)
        assert all(isinstance(o, RuntimeError) for o in outcomes)
        assert await b.submit([3]) == [3]


async def test_wrong_result_count_is_an_error() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    async with running(MicroBatcher(short, max_batch_size=8, max_wait_s=0)) as b:
        with pytest.raises(RuntimeError, match="2 results for 3 items"):
            await b.submit([1, 2, 3])


async def test_submit_needs_a_running_batcher_and_close_fails_the_queue() -> None:
    rec = Recorder()
    batcher = MicroBatcher(rec, max_batch_size=1, max_wait_s=0)
    with pytest.raises(NotReadyError):
        await batcher.submit([1])
    rec.gate.clear()
    batcher.start()
    first = asyncio.create_task(batcher.submit([1]))
    await rec.entered.wait()
    queued = asyncio.create_task(batcher.submit([2]))
    await asyncio.sleep(0.01)
    closing = asyncio.create_task(batcher.close())
    await asyncio.sleep(0.01)
    rec.gate.set()
    await closing
    assert await first == [10]
    with pytest.raises(NotReadyError):
        await queued


async def test_stats_and_concurrent_batches() -> None:
    seen: list[BatchStats] = []
    active = peak = 0

    async def slow(items: list[int]) -> list[int]:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        active -= 1
        return items

    batcher = MicroBatcher(slow, max_batch_size=2, max_wait_s=0, max_concurrent_batches=3, on_batch=seen.append)
    async with running(batcher) as b:
        await b.submit(list(range(6)))
    assert sum(s.items for s in seen) == 6
    assert peak > 1  # several batches ran at once


def test_rejects_bad_limits() -> None:
    async def h(items: list[int]) -> list[int]:
        return items

    with pytest.raises(ValueError):
        MicroBatcher(h, max_batch_size=0)


async def test_no_wait_still_takes_what_is_already_queued() -> None:
    rec = Recorder()
    async with running(MicroBatcher(rec, max_batch_size=8, max_wait_s=0.0)) as b:
        results = await asyncio.gather(b.submit([1]), b.submit([2]), b.submit([3]))
    assert results == [[10], [20], [30]]
    assert rec.batches == [[1, 2, 3]]  # queued in the same loop iteration: one batch


async def test_work_queued_while_the_handler_is_busy_joins_the_next_batch_at_once() -> None:
    rec = Recorder()
    rec.gate.clear()
    async with running(MicroBatcher(rec, max_batch_size=8, max_wait_s=0.0, cost=lambda i: i, max_batch_cost=12)) as b:
        first = asyncio.create_task(b.submit([1]))
        await rec.entered.wait()  # the handler holds [1]
        later = []
        for i in (2, 3, 4, 5):  # one by one: the batch after [1] is formed before the others arrive
            later.append(asyncio.create_task(b.submit([i])))
            await asyncio.sleep(0.01)
        rec.gate.set()
        assert await first == [10]
        assert [await t for t in later] == [[20], [30], [40], [50]]
    assert rec.batches == [[1], [2, 3, 4], [5]]  # topped up to the cost budget (2+3+4 <= 12 < 2+3+4+5)


async def test_submit_within_waits_for_room_in_pieces_first_come_first_served() -> None:
    rec = Recorder()
    rec.gate.clear()
    async with running(MicroBatcher(rec, max_batch_size=4, max_wait_s=0, max_queued_items=3)) as b:
        first = asyncio.create_task(b.submit([0]))
        await rec.entered.wait()  # the handler holds batch [0]; the queue (3) is free
        big = asyncio.create_task(b.submit_within(list(range(1, 11)), timeout_s=5))  # 10 items, over 3 times the queue
        await asyncio.sleep(0.01)
        assert b.waiting_for_room == 1 and b.queued_items == 3
        late = asyncio.create_task(b.submit_within([99], timeout_s=5))
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFullError):  # others wait for room: a plain submit is refused, not let ahead
            await b.submit([50])
        rec.gate.set()
        submitted = await big
        assert submitted.results == [i * 10 for i in range(1, 11)] and submitted.room_wait_s > 0
        assert (await late).results == [990]
        assert await first == [0]
    assert [item for batch in rec.batches for item in batch] == [0, *range(1, 11), 99]  # in order of arrival
    assert max(len(batch) for batch in rec.batches) <= 3


async def test_submit_within_gives_up_at_its_timeout_and_gives_the_room_back() -> None:
    rec = Recorder()
    rec.gate.clear()
    async with running(MicroBatcher(rec, max_batch_size=2, max_wait_s=0, max_queued_items=2)) as b:
        first = asyncio.create_task(b.submit([0]))
        await rec.entered.wait()
        queued = asyncio.create_task(b.submit([1, 2]))
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFullError, match="stayed full"):
            await b.submit_within([3, 4, 5], timeout_s=0.05)
        cancelled = asyncio.create_task(b.submit_within([6], timeout_s=5))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cancelled
        assert b.waiting_for_room == 0 and b.queued_items == 2
        rec.gate.set()
        assert await first == [0] and await queued == [10, 20]
        assert (await b.submit_within([7], timeout_s=1)).results == [70]  # nothing of the withdrawn work is left
        assert b.queued_items == 0
    assert [item for batch in rec.batches for item in batch] == [0, 1, 2, 7]
