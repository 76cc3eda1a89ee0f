"""Gathering the samples of a GRPO group that arrive one by one, to score them together.

OpenRLHF hands each sampled reply to its reward on its own, while the redundancy of a reply is only
defined against its siblings. :class:`GroupGatherer` holds each sample under its group's key until
the group's size has arrived, or until a wait after the first of them (then the samples that came
form a partial group). Groups that close within ``flush_s`` of each other are scored together in
one call (fewer, larger requests downstream, as a micro-batcher would). Both gatherers of the system
use it: the reward service's OpenRLHF gatherer (``/openrlhf/reward``) and the trainer's agent executor.

Scoring never raises into a waiting sample: a failed call gets the fallback for each of its samples.
When the service is told to stop, :meth:`GroupGatherer.drain` scores every waiting group at once as
it is (a partial group), so waiting samples get real results rather than the fallback.

>>> import asyncio
>>> async def score(groups):
...     return [[f"{g.context}:{item}:{g.fill}" for item in g.items] for g in groups]
>>> async def main():
...     gatherer = GroupGatherer(score, fallback=lambda fill: "fallback", wait_s=0.05)
...     a = gatherer.join("g", 2, "ctx", "a")
...     b = gatherer.join("g", 2, "ctx", "b")
...     late = gatherer.join("h", 2, "ctx", "c")
...     return await asyncio.gather(a, b, late)
>>> asyncio.run(main())
['ctx:a:1.0', 'ctx:b:1.0', 'ctx:c:0.5']
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from services.core.batching import QueueFullError

logger = logging.getLogger(__name__)

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")

#: Why a group was scored: all its samples came (``full``), its wait ran out (``deadline``), it had no
#: key (``single``), or the service is stopping (``shutdown``).
CloseReason = str


@dataclass
class Group(Generic[C, T, R]):
    """The samples of one group that have arrived; ``context`` came with the first of them."""

    key: Hashable
    size: int
    context: C
    items: list[T] = field(default_factory=list)
    futures: list[asyncio.Future[R]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None

    @property
    def fill(self) -> float:
        """The share of the group that came."""
        return len(self.items) / self.size


class GroupGatherer(Generic[C, T, R]):
    """Holds samples until their group is complete (or its wait ends), then scores the group once.

    Args:
        score: ``score(groups)`` gives, for each closed group, one result per item in order; a
            group's ``context`` is what its first sample brought (its label).
        fallback: the result of a sample whose group could not be scored, given the group's fill.
        wait_s: how long a group waits for its siblings after its first sample.
        flush_s: how long a closed group waits for other groups to close, to be scored with them.
        max_items_per_call: most samples one ``score`` call gets (a group is never split).
        max_open: most groups waiting at once; past it, :meth:`join` raises ``QueueFullError``.
        on_close: called with (why, fill) when a group closes (metrics).
    """

    def __init__(
        self,
        score: Callable[[list[Group[C, T, R]]], Awaitable[Sequence[Sequence[R]]]],
        fallback: Callable[[float], R],
        wait_s: float,
        flush_s: float = 0.0,
        max_items_per_call: int = 256,
        max_open: int = 100_000,
        on_close: Callable[[CloseReason, float], None] | None = None,
    ) -> None:
        self._score = score
        self._fallback = fallback
        self.wait_s = wait_s
        self.flush_s = flush_s
        self.max_items_per_call = max_items_per_call
        self.max_open = max_open
        self._on_close = on_close
        self._open: dict[Hashable, Group[C, T, R]] = {}
        self._closed: list[Group[C, T, R]] = []
        self._flush: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._draining = False

    @property
    def open_groups(self) -> int:
        """Groups waiting for siblings."""
        return len(self._open)

    def join(self, key: Hashable | None, size: int, context: C, item: T) -> asyncio.Future[R]:
        """Add a sample to its group; the future resolves once the group has been scored.

        Args:
            key: the group's key; None (or ``size`` 1) scores the sample alone, at once.
            size: how many samples the group has.
            context: what the group is scored with (taken from its first sample).
            item: the sample.

        Raises:
            QueueFullError: ``max_open`` groups are already waiting.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if key is None or size <= 1:
            self._schedule(Group(key=None, size=1, context=context, items=[item], futures=[future]), "single")
            return future
        group = self._open.get(key)
        if group is None:
            if len(self._open) >= self.max_open:
                raise QueueFullError(f"{len(self._open)} groups are waiting for their siblings")
            group = Group(key=key, size=size, context=context)
            group.timer = loop.call_later(self.wait_s, self._close, group, "deadline")
            self._open[key] = group
        group.items.append(item)
        group.futures.append(future)
        if len(group.items) >= group.size:
            self._close(group, "full")
        elif self._draining:  # stopping: nothing waits for siblings any more
            self._close(group, "shutdown")
        return future

    def join_all(self, samples: Sequence[tuple[Hashable | None, int, C, T]]) -> list[asyncio.Future[R]]:
        """:meth:`join` each ``(key, size, context, item)``, or none of them when the groups they would
        open do not fit under ``max_open`` (so a refused request leaves nothing behind to be retried twice).

        Raises:
            QueueFullError: the new groups would exceed ``max_open``.
        """
        new = {key for key, size, _, _ in samples if key is not None and size > 1 and key not in self._open}
        if new and len(self._open) + len(new) > self.max_open:
            raise QueueFullError(f"{len(self._open)} groups are waiting for their siblings")
        return [self.join(*sample) for sample in samples]

    async def drain(self) -> None:
        """Score every waiting group now, as it is (a partial group), and wait until all scoring is done.

        Samples that join afterwards are scored at once with what their group has. The caller bounds
        how long it waits; :meth:`close` answers whatever is still unscored with the fallback.
        """
        self._draining = True
        for group in list(self._open.values()):
            self._close(group, "shutdown")
        if self._flush is not None:
            self._flush.cancel()
            self._start_flush()
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Give every waiting sample its fallback and stop the groups being scored."""
        for group in list(self._open.values()):
            self._take(group)
            self._resolve(group, [self._fallback(group.fill)] * len(group.futures))
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        closed, self._closed = self._closed, []
        for group in closed:
            self._resolve(group, [self._fallback(group.fill)] * len(group.futures))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _take(self, group: Group[C, T, R]) -> bool:
        """Remove a group from the waiting ones; False when it was not waiting."""
        if self._open.get(group.key) is not group:
            return False
        del self._open[group.key]
        if group.timer is not None:
            group.timer.cancel()
        return True

    def _close(self, group: Group[C, T, R], reason: CloseReason) -> None:
        if self._take(group):
            self._schedule(group, reason)

    def _schedule(self, group: Group[C, T, R], reason: CloseReason) -> None:
        """Queue a closed group for the next flush (which starts ``flush_s`` after the first)."""
        if self._on_close is not None:
            self._on_close(reason, group.fill)
        self._closed.append(group)
        if self._flush is None:
            delay = 0.0 if self._draining else self.flush_s
            self._flush = asyncio.get_running_loop().call_later(delay, self._start_flush)

    def _start_flush(self) -> None:
        self._flush = None
        closed, self._closed = self._closed, []
        calls: list[list[Group[C, T, R]]] = []
        items = 0
        for group in closed:
            if not calls or items + len(group.items) > self.max_items_per_call:
                calls.append([])
                items = 0
            calls[-1].append(group)
            items += len(group.items)
        for call in calls:
            task = asyncio.get_running_loop().create_task(self._run(call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, groups: list[Group[C, T, R]]) -> None:
        try:
            results = [list(r) for r in await self._score(groups)]
            if [len(r) for r in results] != [len(g.items) for g in groups]:
                raise ValueError("the scorer's results do not match the groups' samples")
        except asyncio.CancelledError:
            for group in groups:
                self._resolve(group, [self._fallback(group.fill)] * len(group.futures))
            raise
        except Exception:
            logger.exception("%d groups could not be scored: fallback results", len(groups))
            results = [[self._fallback(g.fill)] * len(g.futures) for g in groups]
        for group, result in zip(groups, results, strict=True):
            self._resolve(group, result)

    @staticmethod
    def _resolve(group: Group[C, T, R], results: Sequence[R]) -> None:
        for future, result in zip(group.futures, results, strict=True):
            if not future.done():
                future.set_result(result)


async def score_by_kind(
    groups: list[Group[C, T, R]],
    kind: Callable[[Group[C, T, R]], Hashable],
    score: Callable[[list[Group[C, T, R]]], Awaitable[list[list[R]]]],
) -> list[list[R]]:
    """Score groups with one concurrent ``score`` call per kind (e.g. per schema), results in input order.

    >>> async def score(groups):
    ...     return [[f"{g.context}{len(groups)}"] * len(g.items) for g in groups]
    >>> groups = [Group(key=k, size=1, context=c, items=["x"]) for k, c in enumerate("aba")]
    >>> asyncio.run(score_by_kind(groups, lambda g: g.context, score))
    [['a2'], ['b1'], ['a2']]
    """
    kinds: dict[Hashable, list[int]] = {}
    for index, group in enumerate(groups):
        kinds.setdefault(kind(group), []).append(index)
    answers = await asyncio.gather(*(score([groups[i] for i in ids]) for ids in kinds.values()))
    results: list[list[R]] = [[] for _ in groups]
    for ids, answer in zip(kinds.values(), answers, strict=True):
        for index, scored in zip(ids, answer, strict=True):
            results[index] = scored
    return results
