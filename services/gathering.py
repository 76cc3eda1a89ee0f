"""Gathering the samples of a GRPO group that arrive one by one, to score them together.

OpenRLHF hands each sampled reply to its reward on its own, while the redundancy of a reply is only
defined against its siblings. :class:`GroupGatherer` holds each sample under its group's key until
the group's size has arrived, or until a wait after the first of them (then the samples that came
form a partial group), and scores each group with one call. Both gatherers of the system use it:
the reward service's cohort buffer (``/openrlhf/reward``) and the trainer's agent executor.

Scoring never raises into a waiting sample: a failed group gets the fallback for each of its samples.

>>> import asyncio
>>> async def score(context, items, fill):
...     return [f"{context}:{item}:{fill}" for item in items]
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

from services.batching import QueueFullError

logger = logging.getLogger(__name__)

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")

#: Why a group was scored: all its samples came, its wait ran out, it had no key, or shutdown.
CloseReason = str


@dataclass
class _Group(Generic[C, T, R]):
    key: Hashable
    size: int
    context: C
    items: list[T] = field(default_factory=list)
    futures: list[asyncio.Future[R]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None

    @property
    def fill(self) -> float:
        return len(self.items) / self.size


class GroupGatherer(Generic[C, T, R]):
    """Holds samples until their group is complete (or its wait ends), then scores the group once.

    Args:
        score: ``score(context, items, fill)`` gives one result per item, in order; ``context`` is
            what the group's first sample brought (its label), ``fill`` the share of the group that came.
        fallback: the result of a sample whose group could not be scored, given the fill.
        wait_s: how long a group waits for its siblings after its first sample.
        max_open: most groups waiting at once; past it, :meth:`join` raises ``QueueFullError``.
        on_close: called with (why, fill) when a group closes (metrics).
    """

    def __init__(
        self,
        score: Callable[[C, list[T], float], Awaitable[Sequence[R]]],
        fallback: Callable[[float], R],
        wait_s: float,
        max_open: int = 100_000,
        on_close: Callable[[CloseReason, float], None] | None = None,
    ) -> None:
        self._score = score
        self._fallback = fallback
        self.wait_s = wait_s
        self.max_open = max_open
        self._on_close = on_close
        self._open: dict[Hashable, _Group[C, T, R]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

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
            self._schedule(_Group(key=None, size=1, context=context, items=[item], futures=[future]), "single")
            return future
        group = self._open.get(key)
        if group is None:
            if len(self._open) >= self.max_open:
                raise QueueFullError(f"{len(self._open)} groups are waiting for their siblings")
            group = _Group(key=key, size=size, context=context)
            group.timer = loop.call_later(self.wait_s, self._close, group, "deadline")
            self._open[key] = group
        group.items.append(item)
        group.futures.append(future)
        if len(group.items) >= group.size:
            self._close(group, "full")
        return future

    async def close(self) -> None:
        """Give every waiting sample its fallback and stop the groups being scored."""
        for group in list(self._open.values()):
            self._close(group, "shutdown")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _close(self, group: _Group[C, T, R], reason: CloseReason) -> None:
        if self._open.get(group.key) is not group:
            return
        del self._open[group.key]
        if group.timer is not None:
            group.timer.cancel()
        if reason == "shutdown":
            self._resolve(group, [self._fallback(group.fill)] * len(group.futures))
            return
        self._schedule(group, reason)

    def _schedule(self, group: _Group[C, T, R], reason: CloseReason) -> None:
        if self._on_close is not None:
            self._on_close(reason, group.fill)
        task = asyncio.get_running_loop().create_task(self._run(group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, group: _Group[C, T, R]) -> None:
        try:
            results = list(await self._score(group.context, group.items, group.fill))
            if len(results) != len(group.items):
                raise ValueError(f"{len(results)} results for {len(group.items)} samples")
        except asyncio.CancelledError:
            self._resolve(group, [self._fallback(group.fill)] * len(group.futures))
            raise
        except Exception:
            logger.exception("a group of %d samples could not be scored: fallback results", len(group.items))
            results = [self._fallback(group.fill)] * len(group.futures)
        self._resolve(group, results)

    @staticmethod
    def _resolve(group: _Group[C, T, R], results: Sequence[R]) -> None:
        for future, result in zip(group.futures, results, strict=True):
            if not future.done():
                future.set_result(result)
