"""``services.core.gathering.GroupGatherer``: groups close when full, at their wait, or on shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.core.batching import QueueFullError
from services.core.gathering import Group, GroupGatherer


class Recorder:
    """A scorer that records each call (its groups) and answers ``context:item:fill``."""

    def __init__(self, fail: bool = False, short: bool = False, delay_s: float = 0.0) -> None:
        self.calls: list[list[tuple[str, list[str], float]]] = []
        self.fail, self.short, self.delay_s = fail, short, delay_s

    async def __call__(self, groups: list[Group[str, str, str]]) -> Sequence[Sequence[str]]:
        self.calls.append([(g.context, list(g.items), g.fill) for g in groups])
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("scoring failed")
        out = [[f"{g.context}:{item}:{g.fill}" for item in g.items] for g in groups]
        return [o[:-1] for o in out] if self.short else out


def gatherer(score: Recorder, wait_s: float = 5.0, **kwargs: object) -> GroupGatherer[str, str, str]:
    return GroupGatherer(score, lambda fill: f"fallback:{fill}", wait_s=wait_s, **kwargs)  # type: ignore[arg-type]


async def test_a_group_is_scored_once_when_its_last_sample_arrives() -> None:
    score = Recorder()
    g = gatherer(score)
    first = g.join("k", 3, "ctx", "a")
    await asyncio.sleep(0.05)
    assert not first.done() and g.open_groups == 1
    rest = [g.join("k", 3, "other", "b"), g.join("k", 3, "other", "c")]
    assert await asyncio.gather(first, *rest) == ["ctx:a:1.0", "ctx:b:1.0", "ctx:c:1.0"]
    assert score.calls == [[("ctx", ["a", "b", "c"], 1.0)]] and g.open_groups == 0


async def test_the_next_samples_of_a_closed_key_start_a_new_group() -> None:
    score = Recorder()
    g = gatherer(score)
    out = await asyncio.gather(*(g.join("k", 2, "ctx", item) for item in "abcd"))
    assert out == ["ctx:a:1.0", "ctx:b:1.0", "ctx:c:1.0", "ctx:d:1.0"]
    assert [[items for _, items, _ in call] for call in score.calls] == [[["a", "b"], ["c", "d"]]]


@pytest.mark.parametrize(("key", "size"), [(None, 4), ("k", 1)])
async def test_no_key_or_size_one_is_scored_alone_at_once(key: str | None, size: int) -> None:
    score = Recorder()
    g = gatherer(score, wait_s=60)
    assert await asyncio.wait_for(g.join(key, size, "ctx", "a"), 1) == "ctx:a:1.0"
    assert g.open_groups == 0


async def test_a_partial_group_is_scored_at_its_wait() -> None:
    reasons: list[tuple[str, float]] = []
    g = gatherer(Recorder(), wait_s=0.1, on_close=lambda why, fill: reasons.append((why, fill)))
    out = await asyncio.wait_for(asyncio.gather(g.join("k", 4, "ctx", "a"), g.join("k", 4, "ctx", "b")), 2)
    assert out == ["ctx:a:0.5", "ctx:b:0.5"] and reasons == [("deadline", 0.5)]


@pytest.mark.parametrize("recorder", [Recorder(fail=True), Recorder(short=True)])
async def test_a_failed_scoring_gives_every_sample_the_fallback(recorder: Recorder) -> None:
    g = gatherer(recorder)
    assert await asyncio.gather(g.join("k", 2, "c", "a"), g.join("k", 2, "c", "b")) == ["fallback:1.0"] * 2


async def test_too_many_open_groups_is_refused() -> None:
    g = gatherer(Recorder(), max_open=1)
    waiting = g.join("a", 2, "c", "x")
    with pytest.raises(QueueFullError):
        g.join("b", 2, "c", "y")
    g.join("a", 2, "c", "z")  # joining an open group is always possible
    assert await waiting == "c:x:1.0"


async def test_close_answers_waiting_and_scoring_samples_with_the_fallback() -> None:
    g = gatherer(Recorder(delay_s=10))
    waiting = g.join("w", 3, "c", "a")
    scoring = [g.join("s", 2, "c", "b"), g.join("s", 2, "c", "c")]
    await asyncio.sleep(0.05)
    await g.close()
    assert await waiting == f"fallback:{1 / 3}"
    assert await asyncio.gather(*scoring) == ["fallback:1.0"] * 2


async def test_groups_closing_within_the_flush_window_share_a_call_up_to_the_item_cap() -> None:
    score = Recorder()
    g = gatherer(score, flush_s=0.1, max_items_per_call=4)
    first = [g.join("a", 2, "a", "x"), g.join("a", 2, "a", "y")]
    await asyncio.sleep(0.02)
    rest = [g.join(k, 2, k, item) for k in "bc" for item in "xy"]
    await asyncio.gather(*first, *rest)
    assert [[ctx for ctx, _, _ in call] for call in score.calls] == [["a", "b"], ["c"]]


async def test_without_a_flush_window_each_group_is_scored_as_it_closes() -> None:
    score = Recorder()
    g = gatherer(score)
    assert await asyncio.gather(g.join("a", 1, "a", "x")) == ["a:x:1.0"]
    assert await asyncio.gather(g.join("b", 2, "b", "x"), g.join("b", 2, "b", "y")) == ["b:x:1.0", "b:y:1.0"]
    assert len(score.calls) == 2


async def test_join_all_joins_every_sample_or_none() -> None:
    g = gatherer(Recorder(), max_open=2)
    waiting = g.join("a", 2, "c", "x")
    with pytest.raises(QueueFullError):
        g.join_all([("a", 2, "c", "y"), ("b", 2, "c", "x"), ("c", 2, "c", "x")])
    assert g.open_groups == 1 and not waiting.done()  # the refused request added nothing to "a"
    joined = g.join_all([("a", 2, "c", "y"), ("b", 2, "c", "x"), ("b", 2, "c", "y")])
    assert await asyncio.gather(waiting, *joined) == ["c:x:1.0", "c:y:1.0", "c:x:1.0", "c:y:1.0"]


async def test_drain_scores_waiting_groups_as_they_are_and_later_samples_at_once() -> None:
    score = Recorder()
    closes: list[tuple[str, float]] = []
    g = gatherer(score, wait_s=60, flush_s=5, on_close=lambda why, fill: closes.append((why, fill)))
    waiting = [g.join("w", 4, "c", "a"), g.join("w", 4, "c", "b")]
    await asyncio.wait_for(g.drain(), 1)  # neither the 60 s wait nor the 5 s flush is waited for
    assert await asyncio.gather(*waiting) == ["c:a:0.5", "c:b:0.5"]
    late = g.join("x", 4, "c", "z")  # a sample arriving while stopping is scored at once, with its group as it is
    assert await asyncio.wait_for(late, 1) == "c:z:0.25"
    assert closes == [("shutdown", 0.5), ("shutdown", 0.25)] and g.open_groups == 0
