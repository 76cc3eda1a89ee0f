"""The agent executor under faults: every sample still gets a reward, flagged, and nothing raises.

Both services run in-process (fake judge, fake embedder) behind the executor's real typed clients;
generation goes through OpenRLHF's single-turn executor with a scripted engine.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from embedder.app import create_app as create_embedder
from embedder.backends.fake import FakeEmbedder
from embedder.settings import EmbedderSettings
from policy_trainer.agent_executor import AgentExecutor, AgentSettings, GroupScorer
from reward_server.app import create_app as create_reward
from reward_server.backends.fake import FakeJudge
from reward_server.settings import RewardSettings
from services.contracts.clients import EmbedderClient, RewardClient
from tests.openrlhf_rollout import rollout
from tests.support import free_port, in_process
from tests.test_group_rewards import DIFFERENT, HISTORY, REFERENCE, with_reply
from tests.tiny_judge_model import train_tokenizer

CHAT = [{"role": "system", "content": "Reason, then reply."}, {"role": "user", "content": "I might lose my job."}]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return train_tokenizer(1024)


def prompt_of(tokenizer: Any, text: str = "I might lose my job.") -> str:
    chat = [CHAT[0], {"role": "user", "content": text}]
    return str(tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True))


def label(group_id: str | None = "g", group_size: int = 4) -> str:
    out: dict[str, Any] = {"group_size": group_size, "history": HISTORY, "reference": REFERENCE}
    if group_id is not None:
        out["group_id"] = group_id
    return json.dumps(out)


@contextlib.asynccontextmanager
async def executor(
    judge: FakeJudge | None = None, embedder: str = "up", reward: dict[str, Any] | None = None, **settings: Any
) -> AsyncIterator[AgentExecutor]:
    """An agent executor whose reward service (in-process) reaches an in-process embedder ("up"), a closed port
    ("down") or none."""
    embedder_app = create_embedder(EmbedderSettings(_env_file=None, backend="fake"), backend=FakeEmbedder())
    async with in_process(embedder_app):
        embedder_client = {
            "up": EmbedderClient("http://embedder", transport=httpx.ASGITransport(embedder_app), retries=0),
            "down": EmbedderClient(f"http://127.0.0.1:{free_port()}", retries=0),
        }.get(embedder)
        reward_settings = RewardSettings(_env_file=None, backend="fake", embedder_url="", **(reward or {}))
        reward_app = create_reward(reward_settings, backend=judge or FakeJudge(), embedder=embedder_client)
        async with in_process(reward_app):
            reward_client = RewardClient("http://reward", transport=httpx.ASGITransport(reward_app), retries=0)
            agent_settings = AgentSettings(_env_file=None, **settings)
            scorer = GroupScorer(agent_settings, reward=reward_client)
            agent = AgentExecutor(agent_settings, scorer=scorer)
            try:
                yield agent
            finally:
                await scorer.aclose()


async def run(agent: AgentExecutor, tokenizer: Any, labels: list[str], replies: list[list[str]]) -> list[Any]:
    prompts = [(prompt_of(tokenizer, f"Prompt {k}: I might lose my job."), lab) for k, lab in enumerate(labels)]
    return await rollout(agent, tokenizer, prompts, replies)


def logs_of(groups: list[list[dict[str, Any]]]) -> list[dict[str, float]]:
    return [s["extra_logs"] for g in groups for s in g]


async def test_a_full_group_is_judged_and_reweighted(tokenizer: Any) -> None:
    async with executor() as agent:
        groups = await run(agent, tokenizer, [label()], [[with_reply(DIFFERENT[0])] * 4])
    for sample in groups[0]:
        logs = sample["extra_logs"]
        assert logs["s_in"] == pytest.approx(1.0, abs=1e-5) and logs["reweighted"] == 1.0 and logs["fallback"] == 0.0
        assert sample["reward"] == pytest.approx(5.0 * logs["weight"]) and sample["scores"] == sample["reward"]


async def test_embedder_down_gives_unweighted_rewards(tokenizer: Any) -> None:
    async with executor(embedder="down") as agent:
        groups = await run(agent, tokenizer, [label()], [[with_reply(r) for r in DIFFERENT]])
    for sample in groups[0]:
        assert sample["reward"] == 5.0 and sample["extra_logs"]["reweighted"] == 0.0
        assert sample["extra_logs"]["fallback"] == 0.0


async def test_no_embedder_configured_gives_unweighted_rewards(tokenizer: Any) -> None:
    async with executor(embedder="none") as agent:
        groups = await run(agent, tokenizer, [label()], [[with_reply(r) for r in DIFFERENT]])
    assert [s["reward"] for s in groups[0]] == [5.0] * 4


async def test_judge_errors_give_the_flagged_fallback(tokenizer: Any) -> None:
    replies = [with_reply(DIFFERENT[0], "[[judge:error]]"), *[with_reply(r) for r in DIFFERENT[1:]]]
    async with executor(fallback_reward=-1.0) as agent:
        groups = await run(agent, tokenizer, [label()], [replies])
    rewards = sorted((s["extra_logs"]["fallback"], s["reward"]) for s in groups[0])
    assert rewards[-1] == (1.0, -1.0) and all(f == 0.0 and r > 0 for f, r in rewards[:-1])


async def test_a_crashed_judge_gives_every_sample_the_fallback(tokenizer: Any) -> None:
    async with executor() as agent:
        groups = await run(agent, tokenizer, [label()], [[with_reply(r, "[[judge:crash]]") for r in DIFFERENT]])
    assert all(s["reward"] == 0.0 and s["extra_logs"]["fallback"] == 1.0 for s in groups[0])


async def test_an_unreachable_reward_service_gives_the_fallback(tokenizer: Any) -> None:
    settings = AgentSettings(_env_file=None, reward_url=f"http://127.0.0.1:{free_port()}")
    agent = AgentExecutor(settings)
    try:
        groups = await run(agent, tokenizer, [label()], [[with_reply(r) for r in DIFFERENT]])
    finally:
        await agent.scorer.aclose()
    assert all(s["reward"] == 0.0 and s["extra_logs"]["fallback"] == 1.0 for s in groups[0])


async def test_a_slow_judge_is_cut_at_the_deadline(tokenizer: Any) -> None:
    async with executor(FakeJudge(delay_s=5.0), judge_timeout_s=0.3, fallback_reward=-0.5) as agent:
        groups = await run(agent, tokenizer, [label()], [[with_reply(r) for r in DIFFERENT]])
    assert all(s["reward"] == -0.5 and s["extra_logs"]["fallback"] == 1.0 for s in groups[0])


async def test_a_group_that_never_completes_is_scored_partially(tokenizer: Any) -> None:
    async with executor(group_wait_s=0.3) as agent:
        groups = await run(agent, tokenizer, [label(group_size=4)], [[with_reply(r) for r in DIFFERENT[:2]]])
    for sample in groups[0]:
        logs = sample["extra_logs"]
        assert logs["group_fill"] == 0.5 and logs["fallback"] == 0.0 and logs["reweighted"] == 1.0


async def test_groups_of_different_prompts_stay_apart(tokenizer: Any) -> None:
    async with executor(group_wait_s=5) as agent:
        groups = await run(
            agent,
            tokenizer,
            [label("a", 2), label("b", 2)],
            [[with_reply(DIFFERENT[0])] * 2, [with_reply(DIFFERENT[1]), with_reply(DIFFERENT[2])]],
        )
    assert all(s["extra_logs"]["s_in"] == pytest.approx(1.0, abs=1e-5) for s in groups[0])
    assert all(s["extra_logs"]["s_in"] < 0.5 for s in groups[1])
    assert all(s["extra_logs"]["group_fill"] == 1.0 for s in groups[0] + groups[1])


async def test_an_output_the_reward_service_refuses_costs_only_its_own_group(tokenizer: Any) -> None:
    too_long = with_reply("I hear you. " * 300)
    async with executor(reward={"max_field_chars": 2000}, group_flush_ms=300) as agent:
        groups = await run(
            agent,
            tokenizer,
            [label("a", 2), label("b", 2)],
            [[too_long, with_reply(DIFFERENT[0])], [with_reply(DIFFERENT[1]), with_reply(DIFFERENT[2])]],
        )
    assert all(s["extra_logs"]["fallback"] == 1.0 for s in groups[0])
    assert all(s["extra_logs"]["fallback"] == 0.0 and s["extra_logs"]["raw_reward"] == 5.0 for s in groups[1])


async def test_a_call_over_the_services_item_limit_is_split_not_lost(tokenizer: Any) -> None:
    limits = {"max_items_per_request": 4}  # the service takes 4 outputs a request; the executor sends up to 8
    async with executor(reward=limits, group_flush_ms=300, max_items_per_call=8) as agent:
        sent: list[int] = []
        send = agent.scorer.reward.rewards

        async def recording(request: Any, timeout_s: float | None = None) -> Any:
            sent.append(sum(len(g.candidates) for g in request.groups))
            return await send(request, timeout_s=timeout_s)

        agent.scorer.reward.rewards = recording  # type: ignore[method-assign]
        groups = await run(agent, tokenizer, [label("a", 4), label("b", 4)], [[with_reply(r) for r in DIFFERENT]] * 2)
    assert all(s["extra_logs"]["fallback"] == 0.0 and s["extra_logs"]["raw_reward"] == 5.0 for g in groups for s in g)
    assert sent == [8, 4, 4]  # refused as one call of 8 (413), then scored as two calls of 4


@pytest.mark.parametrize("bad", ["{not json", "[1, 2]", json.dumps({"group_id": "g", "group_size": 0})])
async def test_an_unreadable_label_gives_the_fallback(tokenizer: Any, bad: str) -> None:
    async with executor() as agent:
        groups = await run(agent, tokenizer, [bad], [[with_reply(DIFFERENT[0])]])
    (sample,) = groups[0]
    assert sample["reward"] == 0.0 and sample["extra_logs"]["fallback"] == 1.0


def test_settings_come_from_trainer_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINER_REWARD_URL", "http://reward:8000")
    monkeypatch.setenv("TRAINER_GROUP_WAIT_S", "12.5")
    monkeypatch.setenv("TRAINER_REDUNDANCY_VARIANT", "sign_aware")
    settings = AgentExecutor().settings
    assert (settings.reward_url, settings.group_wait_s, settings.redundancy_variant) == (
        "http://reward:8000",
        12.5,
        "sign_aware",
    )


def test_openrlhf_loads_the_executor_from_the_launchers_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenRLHF's rollout actor loads ``--train.agent_func_path`` by file and builds it with no arguments."""
    from openrlhf.trainer.ray.vllm_engine import _load_agent_executor
    from openrlhf.utils.agent import AgentExecutorBase

    from policy_trainer.launcher import agent_executor_path

    monkeypatch.setenv("TRAINER_REWARD_URL", "http://reward:8000")
    loaded = _load_agent_executor(str(agent_executor_path()))
    assert isinstance(loaded, AgentExecutorBase) and type(loaded).__name__ == "AgentExecutor"
    assert loaded.settings.reward_url == "http://reward:8000"
