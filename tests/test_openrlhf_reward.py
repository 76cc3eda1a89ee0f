"""``POST /openrlhf/reward``: OpenRLHF's one-sample requests gathered back into GRPO groups.

Both services run in-process on their fake backends (see ``tests/test_group_rewards.py``); every
request carries one sample, as OpenRLHF 0.11.2 sends them, unless a test says otherwise.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from reward_server.app import create_app as create_reward
from reward_server.backends.fake import FakeJudge
from reward_server.settings import RewardSettings
from services.contracts.openrlhf import EXTRA_LOG_KEYS
from tests.support import error_of, in_process
from tests.test_group_rewards import DIFFERENT, HISTORY, REFERENCE, services, with_reply

PROMPT = "<|im_start|>user\nI'm afraid I will lose my job.<|im_end|>\n<|im_start|>assistant\n"


def label(group_id: str | None, group_size: int = 4, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"group_size": group_size, "history": HISTORY, "reference": REFERENCE, **extra}
    if group_id is not None:
        out["group_id"] = group_id
    return out


def sample(reply: str, lab: dict[str, Any] | str, marker: str = "") -> dict[str, Any]:
    """One OpenRLHF request: the decoded prompt and output (with its end token), the prompt, the label."""
    return {"query": [PROMPT + with_reply(reply, marker) + "<|im_end|>"], "prompts": [PROMPT], "labels": [lab]}


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/openrlhf/reward", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def one(answer: dict[str, Any]) -> tuple[float, dict[str, float]]:
    """The reward and logs of a one-sample answer (lists of one, as OpenRLHF's own server answers)."""
    assert len(answer["rewards"]) == len(answer["scores"]) == 1
    assert answer["scores"] == answer["rewards"]
    assert set(answer["extra_logs"]) == set(EXTRA_LOG_KEYS)
    logs = {key: values[0] for key, values in answer["extra_logs"].items()}
    assert all(isinstance(v, float) for v in logs.values())
    return answer["rewards"][0], logs


async def test_groups_of_one_sample_requests_are_judged_together() -> None:
    same = [sample(DIFFERENT[0], label("same")) for _ in range(4)]
    different = [sample(reply, label("different")) for reply in DIFFERENT]
    async with services() as (client, transport):
        answers = await asyncio.gather(*(post(client, body) for body in [*same, *different]))
        metrics = (await client.get("/metrics")).text
    same_out, different_out = [one(a) for a in answers[:4]], [one(a) for a in answers[4:]]
    assert 1 <= len(transport.headers) <= 2  # one redundancy call per group or fewer, never one per sample
    for reward, logs in same_out + different_out:
        assert logs["raw_reward"] == 5.0 and logs["step_accuracy"] == 1.0 and logs["format"] == 1.0
        assert logs["preference"] == 1.0 and logs["group_fill"] == 1.0
        assert logs["fallback"] == 0.0 and logs["reweighted"] == 1.0
        assert reward == pytest.approx(5.0 * logs["weight"])
    assert all(logs["s_in"] == pytest.approx(1.0, abs=1e-5) for _, logs in same_out)
    assert all(logs["s_in"] < 0.5 for _, logs in different_out)
    assert max(r for r, _ in same_out) < min(r for r, _ in different_out)
    assert 'unifireward_openrlhf_groups_total{closed_by="full"} 2.0' in metrics
    assert 'unifireward_openrlhf_samples_total{outcome="scored"} 8.0' in metrics


async def test_labels_as_json_strings_and_several_samples_per_request() -> None:
    body = {
        "query": [PROMPT + with_reply(r) for r in DIFFERENT[:2]],
        "prompts": [PROMPT, PROMPT],
        "labels": [json.dumps(label("g", group_size=2))] * 2,
    }
    async with services() as (client, _):
        answer = await post(client, body)
    assert len(answer["rewards"]) == 2 and answer["extra_logs"]["group_fill"] == [1.0, 1.0]
    assert all(s < 0.5 for s in answer["extra_logs"]["s_in"])


async def test_a_group_that_never_completes_is_scored_partially_at_the_wait() -> None:
    async with services(cohort_wait_s=0.3) as (client, _):
        started = time.monotonic()
        answers = await asyncio.gather(*(post(client, sample(r, label("short", group_size=4))) for r in DIFFERENT[:2]))
        waited = time.monotonic() - started
        metrics = (await client.get("/metrics")).text
    assert waited >= 0.3
    for answer in answers:
        reward, logs = one(answer)
        assert logs["group_fill"] == 0.5 and logs["fallback"] == 0.0 and logs["reweighted"] == 1.0
        assert reward == pytest.approx(5.0 * logs["weight"])
    assert 'unifireward_openrlhf_groups_total{closed_by="deadline"} 1.0' in metrics


async def test_without_group_id_a_sample_is_a_group_of_one() -> None:
    async with services(cohort_wait_s=30) as (client, _):
        reward, logs = one(await post(client, sample(DIFFERENT[0], label(None))))
    assert logs["group_fill"] == 1.0 and logs["s_in"] == 0.0 and logs["reweighted"] == 1.0
    assert reward == pytest.approx(5.0 * logs["weight"])


async def test_prompts_sharing_an_id_by_mistake_are_not_mixed() -> None:
    other_history = [{"role": "seeker", "content": "My dog died last week and I can't stop crying."}]
    mine = [sample(DIFFERENT[0], label("dup", group_size=2)) for _ in range(2)]
    theirs = [sample(r, label("dup", group_size=2, history=other_history)) for r in DIFFERENT[1:3]]
    async with services(cohort_wait_s=5) as (client, _):
        answers = await asyncio.gather(*(post(client, b) for b in [mine[0], theirs[0], mine[1], theirs[1]]))
    logs = [one(a)[1] for a in answers]
    assert all(entry["group_fill"] == 1.0 for entry in logs)
    assert logs[0]["s_in"] == pytest.approx(1.0, abs=1e-5) and logs[2]["s_in"] == pytest.approx(1.0, abs=1e-5)
    assert logs[1]["s_in"] < 0.5 and logs[3]["s_in"] < 0.5


async def test_judge_failures_give_flagged_fallback_rewards() -> None:
    bodies = [
        sample(DIFFERENT[0], label("g"), "[[judge:error]]"),
        sample(DIFFERENT[1], label("g"), "[[judge:garbage]]"),
        sample(DIFFERENT[2], label("g")),
        sample(DIFFERENT[3], label("g")),
    ]
    async with services(openrlhf_fallback_reward=-1.0) as (client, _):
        failed, garbage, *fine = [one(a) for a in await asyncio.gather(*(post(client, b) for b in bodies))]
    assert failed[0] == -1.0 and failed[1]["fallback"] == 1.0 and failed[1]["raw_reward"] == -1.0
    assert garbage[1]["fallback"] == 0.0  # unreadable judgments count by REWARD_UNPARSEABLE, not as a failure
    assert all(logs["fallback"] == 0.0 and logs["raw_reward"] == 5.0 for _, logs in fine)


async def test_a_judge_slower_than_the_deadline_still_gets_an_answer_in_time() -> None:
    async with services(
        judge=FakeJudge(delay_s=5.0), cohort_wait_s=0.1, openrlhf_deadline_s=0.6, openrlhf_fallback_reward=-2.0
    ) as (client, _):
        started = time.monotonic()
        answers = await asyncio.gather(*(post(client, sample(r, label("slow", 2))) for r in DIFFERENT[:2]))
        waited = time.monotonic() - started
        metrics = (await client.get("/metrics")).text
    assert 0.6 <= waited < 3.0
    for answer in answers:
        reward, logs = one(answer)
        assert reward == -2.0 and logs["fallback"] == 1.0
    assert 'unifireward_openrlhf_samples_total{outcome="late"} 2.0' in metrics


async def test_close_answers_what_is_left_with_the_fallback() -> None:
    app = create_reward(RewardSettings(_env_file=None, backend="fake", embedder_url=""), backend=FakeJudge())
    async with in_process(app) as client:
        pending = asyncio.ensure_future(post(client, sample(DIFFERENT[0], label("never", 4))))
        await asyncio.sleep(0.2)
        await app.state.openrlhf.close()
        reward, logs = one(await asyncio.wait_for(pending, 5))
    assert reward == 0.0 and logs["fallback"] == 1.0 and logs["group_fill"] == 0.25


@pytest.mark.parametrize(
    ("body", "status", "param", "says"),
    [
        ({"query": ["a", "b"], "prompts": [PROMPT], "labels": [label("g")] * 2}, 422, "prompts", "1 prompts for 2"),
        ({"query": ["a"], "labels": ["{not json"]}, 422, "labels.0", "not JSON"),
        ({"query": ["a"], "labels": ["[1, 2]"]}, 422, "labels.0", "must be a JSON object"),
        ({"query": ["a"], "labels": [{"group_size": 0, "reference": "r"}]}, 422, "labels.0", "group_size"),
        ({"query": ["a"], "labels": [{"group_id": "g", "history": []}]}, 422, "labels.0.reference", "reference"),
        ({"query": ["a"], "labels": [{"group_id": "g", "schema": "x", "reference": "r"}]}, 422, "labels.0", "schema"),
        ({"query": ["a"]}, 422, "labels.0.reference", "reference"),
        ({"query": ["a"], "labels": [label("g", group_size=300)]}, 413, "labels.0.group_size", "limit"),
        ({"query": ["a"], "labels": [label("g")], "extra": 1}, 422, "extra", "Extra inputs"),
        ({"query": []}, 422, "query", "at least 1"),
    ],
)
async def test_bad_requests_get_the_error_envelope(body: dict[str, Any], status: int, param: str, says: str) -> None:
    async with services() as (client, _):
        response = await client.post("/openrlhf/reward", json=body)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["param"] == param and says in error["message"]


async def test_too_many_waiting_groups_is_429() -> None:
    async with services(max_open_cohorts=1, cohort_wait_s=5) as (client, _):
        first = asyncio.ensure_future(post(client, sample(DIFFERENT[0], label("a", 2))))
        await asyncio.sleep(0.1)
        refused = await client.post("/openrlhf/reward", json=sample(DIFFERENT[1], label("b", 2)))
        await post(client, sample(DIFFERENT[2], label("a", 2)))
        await first
    assert refused.status_code == 429 and "REWARD_MAX_OPEN_COHORTS" in error_of(refused)["message"]


def test_the_cohort_wait_must_leave_time_to_judge() -> None:
    with pytest.raises(ValueError, match="cohort_wait_s"):
        RewardSettings(_env_file=None, backend="fake", cohort_wait_s=60, openrlhf_deadline_s=50)
