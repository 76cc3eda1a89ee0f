"""TRL's GRPOTrainer rewarded by the reward service: the reward function, then a real run on CPU.

The fast tests drive :class:`policy_trainer.trl_rewards.ServiceReward` against an httpx ``MockTransport``
(and once against the real reward service app in-process, fake judge). The slow test runs a real
``trl.GRPOTrainer`` for two steps on a tiny random Qwen2 policy, with both services as processes on
loopback (the reward service with the fake judge and ``REWARD_ANSWER_LOG``, the embedder with the real
MiniLM), on two ESConv train prompts, and checks what the trainer logged against what the service
answered, from the service's own log.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_trainer.prompts import dialogue_rows
from policy_trainer.trl_local import trl_row, trl_rows
from policy_trainer.trl_rewards import ServiceReward, completion_text
from services.contracts.reward import RewardsRequest
from services.core.schemas import SCHEMAS
from tests.guards import ESCONV_DIR, needs_esconv
from tests.support import free_port, in_process, running

HISTORY = [{"role": "seeker", "content": "I'm feeling anxious that I am going to lose my job."}]
REFERENCE = "I see. Have you spoken to HR?"
EXAMPLE = SCHEMAS["compeer"].example


def label(group_id: str | None = "g1", **extra: Any) -> str:
    body: dict[str, Any] = {"group_size": 4, "history": HISTORY, "reference": REFERENCE, **extra}
    if group_id is not None:
        body["group_id"] = group_id
    return json.dumps(body)


class FakeService:
    """A MockTransport handler answering ``/v1/rewards``: reward = 10 * group index + candidate index."""

    def __init__(self, *, status: int = 200, refuse: set[str] | None = None, unjudged: set[str] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = status
        self.refuse = refuse or set()
        self.unjudged = unjudged or set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/rewards"
        body = json.loads(request.content)
        RewardsRequest.model_validate(body)  # what we send is a valid request
        self.requests.append(body)
        if self.status != 200:
            error = {"message": "nope", "type": "server_error", "code": "internal_error", "param": None}
            return httpx.Response(self.status, json={"error": error})
        groups = []
        for g, group in enumerate(body["groups"]):
            if group["id"] in self.refuse:
                error = {"message": "too long", "type": "invalid_request_error", "code": "too_long", "param": None}
                groups.append(self._group(group["id"], [], error))
                continue
            cands = []
            for c, cand in enumerate(group["candidates"]):
                value = None if cand["candidate"] in self.unjudged else float(10 * g + c)
                cands.append(self._candidate(cand["id"], value))
            groups.append(self._group(group["id"], cands, None))
        answer = {
            "groups": groups,
            "model": "fake",
            "embedder_model": None,
            "template_version": "t",
            "variant": "paper",
            "usage": {"items": 0, "judge_turns": 0, "prompt_tokens": 0, "completion_tokens": 0},
        }
        return httpx.Response(200, json=answer)

    @staticmethod
    def _group(gid: str, cands: list[dict[str, Any]], error: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "id": gid,
            "candidates": cands,
            "tau": None,
            "mean_length": None,
            "redundancy": "disabled",
            "redundancy_error": None,
            "error": error,
        }

    @staticmethod
    def _candidate(cid: str, value: float | None) -> dict[str, Any]:
        judge = {
            "id": cid,
            "reward": value,
            "scoring": "discrete",
            "components": None,
            "judgments": None,
            "parsed": {"steps": {}, "response": None, "missing": [], "complete": False},
            "status": "ok" if value is not None else "backend_error",
            "errors": [],
        }
        return {
            "id": cid,
            "reward": value,
            "raw_reward": value,
            "s_in": None,
            "s_hi": None,
            "tau": None,
            "weight": None,
            "redundancy": "disabled",
            "judge": judge,
        }


def reward_fn(service: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> ServiceReward:
    return ServiceReward("http://t", transport=httpx.MockTransport(service), retries=0, **kwargs)


def test_groups_by_consecutive_prompts_in_one_call() -> None:
    service = FakeService()
    fn = reward_fn(service)
    prompts = ["p1"] * 4 + ["p2"] * 4
    completions = [f"c{i}" for i in range(8)]
    metrics: list[tuple[str, float]] = []
    out = fn(
        prompts,
        completions,
        completion_ids=[[1]] * 8,
        history=[HISTORY] * 8,
        reference=[REFERENCE] * 8,
        trainer_state=None,
        log_metric=lambda name, value: metrics.append((name, value)),
        log_extra=lambda column, values: None,
    )
    assert out == [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0]
    assert len(service.requests) == 1 and fn.requests == 1
    body = service.requests[0]
    assert body["invalid_groups"] == "report" and body["schema"] == "compeer" and body["mode"] == "unified"
    assert [[c["candidate"] for c in g["candidates"]] for g in body["groups"]] == [completions[:4], completions[4:]]
    assert body["groups"][0]["history"] == HISTORY and body["groups"][0]["reference"] == REFERENCE
    assert fn.fallbacks == 0 and metrics == [("unifireward/fallbacks", 0.0)]
    assert fn.__name__ == "unifireward" and fn.batches == 1 and fn.completions == 8


def test_num_generations_cuts_repeated_prompts_into_groups() -> None:
    service = FakeService()
    fn = reward_fn(service, num_generations=4)
    out = fn(["p"] * 8, [f"c{i}" for i in range(8)], history=[HISTORY] * 8, reference=[REFERENCE] * 8)
    assert len(service.requests[0]["groups"]) == 2
    assert out == [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0]
    # Without it, one run of one prompt is one group.
    service2 = FakeService()
    reward_fn(service2)(["p"] * 8, [f"c{i}" for i in range(8)], history=[HISTORY] * 8, reference=[REFERENCE] * 8)
    assert len(service2.requests[0]["groups"]) == 1


def test_label_column_gives_the_dialogue_and_the_group_id() -> None:
    service = FakeService()
    fn = reward_fn(service)
    # Interleaved on purpose: a group id gathers its completions wherever they are.
    labels = [label("a"), label("b")] * 2
    chats = [[{"role": "assistant", "content": f"reply {i}"}] for i in range(4)]
    out = fn(["x", "y", "x", "y"], chats, label=labels)
    groups = service.requests[0]["groups"]
    assert [g["id"] for g in groups] == ["a", "b"]
    assert [[c["candidate"] for c in g["candidates"]] for g in groups] == [
        ["reply 0", "reply 2"],
        ["reply 1", "reply 3"],
    ]
    assert groups[0]["history"] == HISTORY and groups[0]["reference"] == REFERENCE
    assert out == [0.0, 10.0, 1.0, 11.0]


def test_columns_win_over_the_label_and_kinds_go_in_separate_calls() -> None:
    service = FakeService()
    fn = reward_fn(service)
    out = fn(
        ["p"] * 2 + ["q"] * 2,
        ["a", "b", "c", "d"],
        label=[label("g1"), label("g1"), label("g2", schema="care"), label("g2", schema="care")],
        reference=["Other.", "Other.", None, None],
        mode=[None, None, "prm", "prm"],
    )
    assert [(r["schema"], r["mode"]) for r in service.requests] == [("compeer", "unified"), ("care", "prm")]
    assert service.requests[0]["groups"][0]["reference"] == "Other."
    assert service.requests[1]["groups"][0]["reference"] == REFERENCE
    assert out == [0.0, 1.0, 0.0, 1.0]
    assert fn.requests == 2


def test_same_group_id_with_another_dialogue_is_another_group() -> None:
    service = FakeService()
    reward_fn(service)(["p"] * 2, ["a", "b"], label=[label("g"), label("g")], reference=["One.", "Two."])
    assert [g["id"] for g in service.requests[0]["groups"]] == ["g", "g#1"]


def test_unusable_values_get_counted_fallbacks() -> None:
    service = FakeService()
    fn = reward_fn(service, fallback_reward=-1.0)
    out = fn(
        ["p"] * 4,
        ["ok", 42, "fine", "also"],
        label=[label(), label(), "{not json", label()],
        history=[HISTORY, HISTORY, HISTORY, [{"role": "robot", "content": "x"}]],
    )
    assert out == [0.0, -1.0, -1.0, -1.0]
    assert fn.fallbacks == 3 and fn.fallback_reasons == {"completion": 1, "context": 2}
    assert [r.fallback for r in fn.last_batch] == [None, "completion", "context", "context"]
    assert [c["candidate"] for c in service.requests[0]["groups"][0]["candidates"]] == ["ok"]


def test_an_unusable_completion_does_not_split_its_group() -> None:
    service = FakeService()
    fn = reward_fn(service, num_generations=4)
    out = fn(["p"] * 8, ["a", 3, "b", "c", "d", "e", None, "f"], history=[HISTORY] * 8, reference=[REFERENCE] * 8)
    groups = service.requests[0]["groups"]
    assert [[c["candidate"] for c in g["candidates"]] for g in groups] == [["a", "b", "c"], ["d", "e", "f"]]
    assert out == [0.0, 0.0, 1.0, 2.0, 10.0, 11.0, 0.0, 12.0] and fn.fallbacks == 2


def test_long_group_ids_are_shortened_and_kept_apart() -> None:
    service = FakeService()
    long_a, long_b = "x" * 400 + "a", "x" * 400 + "b"
    reward_fn(service)(["p", "q"], ["a", "b"], label=[label(long_a), label(long_b)])
    ids = [g["id"] for g in service.requests[0]["groups"]]
    assert len(set(ids)) == 2 and all(len(i) <= 256 for i in ids)


def test_service_failures_are_counted_fallbacks(caplog: pytest.LogCaptureFixture) -> None:
    fn = reward_fn(FakeService(status=500))
    assert fn(["p"] * 2, ["a", "b"], label=[label()] * 2) == [0.0, 0.0]
    assert fn.fallbacks == 2 and fn.fallback_reasons == {"service": 2}
    assert "fallback" in caplog.text

    refused = reward_fn(FakeService(refuse={"bad"}), fallback_reward=None)
    out = refused(["p", "p", "q", "q"], ["a", "b", "c", "d"], label=[label("bad")] * 2 + [label("good")] * 2)
    assert out == [None, None, 10.0, 11.0] and refused.fallback_reasons == {"refused": 2}

    unjudged = reward_fn(FakeService(unjudged={"b"}))
    assert unjudged(["p"] * 2, ["a", "b"], label=[label()] * 2) == [0.0, 0.0]
    assert unjudged.fallbacks == 1 and unjudged.last_batch[0].fallback is None

    down = ServiceReward(f"http://127.0.0.1:{free_port()}", retries=0, timeout_s=5)
    assert down(["p"], ["a"], label=[label()]) == [0.0] and down.fallback_reasons == {"service": 1}


def test_call_shape_errors_raise() -> None:
    fn = reward_fn(FakeService())
    with pytest.raises(ValueError, match="no dialogue column"):
        fn(["p"], ["a"], trainer_state=None)
    with pytest.raises(ValueError, match="has 1 values for 2 completions"):
        fn(["p", "p"], ["a", "b"], label=[label()])
    with pytest.raises(ValueError, match="must be a list"):
        fn(["p"], ["a"], label=label())
    with pytest.raises(ValueError, match="prompts"):
        fn(["p"], ["a", "b"], label=[label()] * 2)
    assert fn(["p"][:0], [], label=[]) == []


def test_completion_text_forms() -> None:
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}]) == "hi"
    assert completion_text([{"role": "tool", "content": "x"}, {"role": "assistant", "content": "y"}]) == "y"
    for bad in (None, 3, [], [{"role": "user", "content": "x"}], [{"role": "assistant", "content": 3}]):
        with pytest.raises(ValueError):
            completion_text(bad)


@needs_esconv
def test_trl_rows_from_openrlhf_rows() -> None:
    from services.data.esconv import load_split, split_path

    dialogues = load_split(split_path(ESCONV_DIR, "train"))
    row = dialogue_rows("train", 0, dialogues[0], group_size=4)[0]
    out = trl_row(row)
    assert out["prompt"] == row["input"] and out["label"] == row["label"]
    parsed = json.loads(row["label"])
    assert out["history"] == parsed["history"] and out["reference"] == parsed["reference"]
    assert (out["schema"], out["mode"]) == ("compeer", "unified")
    with pytest.raises(ValueError):
        trl_rows([{"input": [], "label": row["label"]}])


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
VALUE = JSONISH | st.sampled_from([label(), label(None), HISTORY, REFERENCE, "care", "prm", "{", "[]"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    completions=st.lists(JSONISH | st.text(max_size=30), min_size=1, max_size=6),
    column_values=st.dictionaries(
        st.sampled_from(["label", "history", "reference", "schema", "mode", "group_id"]), VALUE, min_size=1
    ),
)
def test_garbage_values_give_counted_fallbacks_never_a_crash(
    completions: list[Any], column_values: dict[str, Any]
) -> None:
    """Any value in a row's column gives a reward or a counted fallback; only the call's shape raises."""
    service = FakeService()
    fn = reward_fn(service)
    n = len(completions)
    columns = {name: [value] * n for name, value in column_values.items()}
    if not {"label", "history", "reference"} & set(columns):
        with pytest.raises(ValueError):
            fn(["p"] * n, completions, **columns)
        return
    out = fn(["p"] * n, completions, **columns)
    assert len(out) == n and fn.completions == n
    assert all(isinstance(r, float) and math.isfinite(r) for r in out)
    assert fn.fallbacks == sum(r.fallback is not None for r in fn.last_batch)
    sent = sum(len(g["candidates"]) for body in service.requests for g in body["groups"])
    assert sent == n - sum(r.fallback in ("context", "completion") for r in fn.last_batch)


async def test_against_the_reward_service_in_process() -> None:
    """The real /v1/rewards (fake judge, no embedder): what ascore returns is the service's reward."""
    from reward_server.app import create_app
    from reward_server.backends.fake import FakeJudge
    from reward_server.settings import RewardSettings

    app = create_app(RewardSettings(_env_file=None, backend="fake"), backend=FakeJudge())
    async with in_process(app):
        fn = ServiceReward("http://t", transport=httpx.ASGITransport(app), reweight=False)
        completions = [EXAMPLE, EXAMPLE.replace("<response>", "<responze>"), EXAMPLE, "noise"]
        out = await fn.ascore(["p"] * 4, completions, label=[label()] * 4)
    assert fn.fallbacks == 0 and len(out) == 4
    assert out[0] == out[2] == 5.0 and out[1] is not None and out[1] < 5.0
    assert all(r.raw_reward == r.reward for r in fn.last_batch)


# -- the real run -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Both services on loopback: the real MiniLM embedder and the reward service (fake judge) with its answer log."""
    logs = tmp_path_factory.mktemp("logs")
    answer_log = logs / "answers.jsonl"
    embedder_port, reward_port = free_port(), free_port()
    embedder, reward = f"http://127.0.0.1:{embedder_port}", f"http://127.0.0.1:{reward_port}"
    embedder_env = {"EMBEDDER_PORT": str(embedder_port), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    reward_env = {
        "REWARD_PORT": str(reward_port),
        "REWARD_BACKEND": "fake",
        "REWARD_EMBEDDER_URL": embedder,
        "REWARD_ANSWER_LOG": str(answer_log),
        "OMP_NUM_THREADS": "1",
    }
    with (
        running([sys.executable, "-m", "embedder"], embedder_env, embedder, logs / "embedder.log"),
        running([sys.executable, "-m", "reward_server"], reward_env, reward, logs / "reward.log"),
    ):
        yield reward, answer_log


def answered(answer_log: Path) -> list[dict[str, Any]]:
    """The service's answer log, in order (its /v1/rewards lines, when the log names the route)."""
    records = [json.loads(line) for line in answer_log.read_text(encoding="utf-8").splitlines()]
    return [r for r in records if r.get("route", "/v1/rewards") == "/v1/rewards"]


@pytest.mark.slow
@needs_esconv
def test_trl_grpo_two_steps_rewarded_by_the_service(services: tuple[str, Path], tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from policy_trainer.trl_local import run_trl_grpo
    from services.data.esconv import load_split, split_path
    from tests.tiny_judge_model import build_tiny_model

    reward_url, answer_log = services
    policy = build_tiny_model(tmp_path / "policy")
    dialogues = load_split(split_path(ESCONV_DIR, "train"))
    rows = [dialogue_rows("train", d, dialogues[d], group_size=4)[0] for d in (0, 1)]
    before = {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(policy).state_dict().items()}

    summary = run_trl_grpo(policy, rows, reward_url, tmp_path / "out", steps=2)

    # Two steps, each logged with the reward function's mean; each step's batch is 2 prompts x 4 completions.
    assert summary["framework"] == "trl" and summary["steps"] == 2
    assert summary["log_keys"] == ["rewards/unifireward/mean", "reward"]
    assert len(summary["reward_means"]) == 2 and len(summary["batches"]) == 2
    assert summary["requests"] == 2  # one /v1/rewards call per batch
    for batch in summary["batches"]:
        assert len(batch["completions"]) == 8 and len(set(batch["group_ids"])) == 2
    # Every completion got the service's reward: no fallback.
    assert summary["fallbacks"] == 0
    assert all(f is None for b in summary["batches"] for f in b["fallbacks"])
    assert all(r == s for b in summary["batches"] for r, s in zip(b["rewards"], b["service_rewards"], strict=True))

    # What the trainer logged per step is the mean of what the service answered for that step's completions,
    # read from the service's own answer log: one /v1/rewards call per step, so the log's lines come in steps
    # of 8, each naming its output by the SHA-256 of the text the service received.
    log = answered(answer_log)
    assert len(log) == 16
    logged_steps = [e for e in summary["log_history"] if "rewards/unifireward/mean" in e]
    assert [e["step"] for e in logged_steps] == [1, 2]
    assert all(e["unifireward/fallbacks"] == 0 for e in logged_steps)
    for step, batch in enumerate(summary["batches"]):
        lines = {r["candidate_id"]: r for r in log[8 * step : 8 * (step + 1)]}
        assert sorted(lines, key=int) == [str(i) for i in range(8)]  # candidate ids are batch positions
        for i, (text, group_id) in enumerate(zip(batch["completions"], batch["group_ids"], strict=True)):
            line = lines[str(i)]
            assert line["candidate_sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
            assert line["group_id"] == group_id and line["raw_reward"] is not None
            assert line["reward"] == pytest.approx(batch["rewards"][i], abs=1e-9)
        service_mean = sum(float(line["reward"]) for line in lines.values()) / 8
        assert summary["reward_means"][step] == pytest.approx(service_mean, abs=1e-5)
        assert summary["total_reward_means"][step] == pytest.approx(service_mean, abs=1e-5)

    # The checkpoint was written, loads with transformers, and the policy's weights moved.
    assert summary["checkpoint"] is not None
    trained = AutoModelForCausalLM.from_pretrained(summary["checkpoint"])
    changed = [k for k, v in trained.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "no weight changed: no update happened"
