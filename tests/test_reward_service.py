"""The reward service in-process on the fake judge: routes, rewards, statuses, errors, limits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import httpx
import pytest

from reward_server.app import create_app
from reward_server.backends.base import JudgeReply
from reward_server.backends.fake import FakeJudge
from reward_server.settings import RewardSettings
from services.core.candidate import parse_candidate
from services.core.judge_prompts import JudgeTask
from services.core.judgments import StepJudgment
from services.core.schemas import SCHEMAS
from tests.support import error_of, in_process

EXAMPLE = SCHEMAS["compeer"].example
HISTORY = [
    {"role": "seeker", "content": "I'm afraid I will lose my job."},
    {"role": "supporter", "content": "That sounds frightening. What happened?"},
    {"role": "seeker", "content": "I'm on disability leave and my job is not protected."},
]

ClientFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


def serve(backend: Any = None, **settings: Any) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    """The reward service on the fake judge, in-process and ready."""
    return in_process(
        create_app(RewardSettings(_env_file=None, backend="fake", **settings), backend=backend or FakeJudge())
    )


def marked(marker: str, candidate: str = EXAMPLE) -> str:
    """The candidate with a fake-judge marker inside its reply."""
    return candidate.replace("</response>", f"{marker}\n</response>")


def item(candidate: str = EXAMPLE, **extra: Any) -> dict[str, Any]:
    return {"history": HISTORY, "candidate": candidate, "reference": "Have you spoken to HR?", **extra}


async def test_judge_gives_verdicts_rationales_components_and_their_sum() -> None:
    async with serve() as client:
        response = await client.post("/v1/judge", json={"schema": "compeer", "items": [item(id="a")]})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "fake-judge" and body["template_version"]
    (result,) = body["results"]
    assert result["id"] == "a" and result["status"] == "ok" and result["errors"] == []
    assert [s["verdict"] for s in result["judgments"]["steps"]] == [True, True, True]
    assert all(s["rationale"] for s in result["judgments"]["steps"])
    assert result["components"] == {
        "steps": [1, 1, 1],
        "preference": 1,
        "format": 1,
        "unparsed": 0,
        "without_probability": 0,
    }
    assert result["reward"] == 5
    assert result["parsed"]["steps"]["support_strategy"]["fields"] == {"strategy": "Question"}
    assert body["usage"] == {
        "items": 1,
        "judge_turns": 4,
        "prompt_tokens": body["usage"]["prompt_tokens"],
        "completion_tokens": 0,
    }


async def test_removed_step_gets_format_minus_one_and_a_rule_verdict() -> None:
    start = EXAMPLE.index("<emotional_state>")
    end = EXAMPLE.index("</emotional_state>") + len("</emotional_state>")
    without_step = EXAMPLE[:start] + EXAMPLE[end:]
    async with serve() as client:
        response = await client.post("/v1/judge", json={"items": [item(without_step)]})
    (result,) = response.json()["results"]
    assert result["components"]["format"] == -1
    assert result["parsed"]["missing"] == ["emotional_state"]
    step = result["judgments"]["steps"][1]
    assert (step["step"], step["verdict"], step["source"]) == ("emotional_state", False, "rule")
    assert result["reward"] == 1 + -1 + 1 + 1 - 1


@pytest.mark.parametrize(
    ("policy", "reward"),
    [
        ("zero", 1),  # 4 unreadable judgments add 0, format +1
        ("negative", -3),  # each counts -1
        ("positive", 5),  # each counts +1
    ],
)
async def test_unparseable_judgment_is_a_status_not_an_error(policy: str, reward: int) -> None:
    async with serve(unparseable=policy) as client:
        response = await client.post("/v1/judge", json={"items": [item(marked("[[judge:garbage]]"))]})
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert result["status"] == "parse_error"
    assert result["components"]["unparsed"] == 4
    assert len(result["errors"]) == 4
    assert result["reward"] == reward


async def test_backend_failures_are_per_item_statuses() -> None:
    async with serve() as client:
        one = await client.post("/v1/judge", json={"items": [item(marked("[[judge:error]]")), item()]})
        crash = await client.post("/v1/judge", json={"items": [item(marked("[[judge:crash]]"))]})
    assert one.status_code == 200
    failed, fine = one.json()["results"]
    assert failed["status"] == "backend_error" and failed["reward"] is None and failed["errors"]
    assert fine["status"] == "ok" and fine["reward"] == 5
    assert crash.status_code == 200
    assert crash.json()["results"][0]["status"] == "backend_error"


@pytest.mark.parametrize(
    ("mode", "turns", "components"),
    [
        (
            "prm",
            3,
            {"steps": [-1, -1, -1], "preference": None, "format": 1, "unparsed": 0, "without_probability": 0},
        ),  # steps only
        ("orm", 1, {"steps": [], "preference": -1, "format": 1, "unparsed": 0, "without_probability": 0}),  # reply only
        (
            "unified",
            4,
            {"steps": [-1, -1, -1], "preference": -1, "format": 1, "unparsed": 0, "without_probability": 0},
        ),  # both
    ],
)
async def test_modes(mode: str, turns: int, components: dict[str, Any]) -> None:
    async with serve() as client:
        response = await client.post("/v1/judge", json={"mode": mode, "items": [item(marked("[[judge:false]]"))]})
    body = response.json()
    assert body["usage"]["judge_turns"] == turns
    assert body["results"][0]["components"] == components


async def test_prm_needs_no_reference_but_unified_does() -> None:
    no_ref = {"history": HISTORY, "candidate": EXAMPLE}
    async with serve() as client:
        prm = await client.post("/v1/judge", json={"mode": "prm", "items": [no_ref]})
        unified = await client.post("/v1/judge", json={"items": [item(), no_ref]})
    assert prm.status_code == 200
    assert unified.status_code == 422
    assert error_of(unified)["param"] == "items.1.reference"


async def test_care_schema() -> None:
    async with serve() as client:
        response = await client.post("/v1/judge", json={"schema": "care", "items": [item(SCHEMAS["care"].example)]})
    result = response.json()["results"][0]
    assert [s["step"] for s in result["judgments"]["steps"]] == ["context", "cognition", "emotion", "support_plan"]
    assert result["reward"] == 6


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "param"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "invalid_json", None),
        ({"json": {"items": [{"candidate": 3, "reference": "x"}]}}, 422, "string_type", "items.0.candidate"),
        ({"json": {"items": []}}, 422, "too_short", "items"),
        ({"json": {"mode": "best", "items": [item()]}}, 422, "literal_error", "mode"),
        ({"json": {"schema": "other", "items": [item()]}}, 422, "literal_error", "schema"),
        ({"json": {"items": [item(surprise=1)]}}, 422, "extra_forbidden", "items.0.surprise"),
        (
            {"json": {"items": [{**item(), "history": [{"role": "bot", "content": "x"}]}]}},
            422,
            "literal_error",
            "items.0.history.0.role",
        ),
        ({"json": {"items": [item("x" * 2001)]}}, 422, "string_too_long", "items.0.candidate"),
        ({"json": {"items": [item()] * 5}}, 413, "request_too_large", "items"),
        (
            {"content": b"{" + b" " * 300_000 + b"}", "headers": {"content-type": "application/json"}},
            413,
            "request_too_large",
            None,
        ),
    ],
)
async def test_bad_requests_get_the_envelope(kwargs: dict[str, Any], status: int, code: str, param: str | None) -> None:
    async with serve(max_items_per_request=4, max_field_chars=2000, max_body_bytes=200_000) as client:
        response = await client.post("/v1/judge", **kwargs)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert (error["code"], error["param"]) == (code, param)
    assert error["message"]


async def test_unknown_route_and_method_use_the_envelope() -> None:
    async with serve() as client:
        missing = await client.get("/v2/judge")
        wrong_method = await client.get("/v1/judge")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    assert wrong_method.status_code == 405 and error_of(wrong_method)["code"] == "method_not_allowed"


async def test_api_keys_guard_everything_but_health_ready_and_metrics() -> None:
    async with serve(api_keys="k1,k2") as client:
        denied = await client.post("/v1/judge", json={"items": [item()]})
        wrong = await client.get("/v1/models", headers={"Authorization": "Bearer nope"})
        allowed = await client.post("/v1/judge", json={"items": [item()]}, headers={"Authorization": "Bearer k2"})
        open_routes = [await client.get(path) for path in ("/health", "/ready", "/metrics")]
    assert denied.status_code == 401 and error_of(denied)["type"] == "authentication_error"
    assert wrong.status_code == 401
    assert allowed.status_code == 200
    assert [r.status_code for r in open_routes] == [200, 200, 200]


class GatedJudge(FakeJudge):
    """A fake whose loading waits for the test."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def start(self) -> None:
        await self.release.wait()
        await super().start()


async def test_ready_is_503_until_the_backend_has_loaded() -> None:
    backend = GatedJudge()
    app = create_app(RewardSettings(_env_file=None, backend="fake"), backend=backend)
    transport = httpx.ASGITransport(app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        health = await client.get("/health")
        not_ready = await client.get("/ready")
        early = await client.post("/v1/judge", json={"items": [item()]})
        backend.release.set()
        for _ in range(100):
            if (await client.get("/ready")).status_code == 200:
                break
            await asyncio.sleep(0.01)
        late = await client.post("/v1/judge", json={"items": [item()]})
    assert health.status_code == 200 and health.json()["status"] == "loading"
    assert not_ready.status_code == 503
    assert early.status_code == 503 and error_of(early)["type"] == "unavailable_error"
    assert late.status_code == 200


async def test_concurrent_requests_are_batched_together() -> None:
    backend = FakeJudge(delay_s=0.05)
    async with serve(backend, batch_wait_ms=50) as client:
        responses = await asyncio.gather(*[client.post("/v1/judge", json={"items": [item()]}) for _ in range(6)])
    assert all(r.status_code == 200 for r in responses)
    assert sum(backend.batches) == 6
    assert max(backend.batches) > 1


async def test_full_queue_answers_429() -> None:
    backend = FakeJudge(delay_s=0.3)
    async with serve(backend, max_queued_items=2, max_batch_size=1, batch_wait_ms=0) as client:
        responses = await asyncio.gather(*[client.post("/v1/judge", json={"items": [item()]}) for _ in range(6)])
    codes = sorted(r.status_code for r in responses)
    assert 200 in codes and 429 in codes
    refused = next(r for r in responses if r.status_code == 429)
    assert error_of(refused)["type"] == "overloaded_error"


async def test_request_id_is_echoed_or_made() -> None:
    async with serve() as client:
        given = await client.get("/v1/models", headers={"X-Request-Id": "trainer-42"})
        made = await client.get("/v1/models")
    assert given.headers["X-Request-Id"] == "trainer-42"
    assert len(made.headers["X-Request-Id"]) == 32


async def test_models_schemas_and_metrics() -> None:
    async with serve() as client:
        await client.post("/v1/judge", json={"items": [item()]})
        models = (await client.get("/v1/models")).json()
        schemas = (await client.get("/v1/schemas")).json()
        metrics = (await client.get("/metrics")).text
    assert models["data"][0]["id"] == "fake-judge" and models["data"][0]["backend"] == "fake"
    names = {s["name"]: s for s in schemas["schemas"]}
    assert set(names) == {"compeer", "care"}
    strategy = names["compeer"]["steps"][2]["fields"][0]
    assert strategy["name"] == "strategy" and len(strategy["values"]) == 8
    for schema in names.values():  # each example is a complete candidate
        assert parse_candidate(schema["example"], SCHEMAS[schema["name"]]).complete
    assert 'unifireward_judge_items_total{status="ok"} 1.0' in metrics
    assert 'unifireward_http_requests_total{route="/v1/judge",status="200"} 1.0' in metrics


class ProbableJudge(FakeJudge):
    """The fake judge, with the probabilities a classifier or a logprob-reading judge would give."""

    async def judge(self, tasks: Sequence[JudgeTask]) -> list[JudgeReply]:
        replies = await super().judge(tasks)
        for reply in replies:
            reply.verdicts = [
                replace(v, p_correct=0.75)
                if isinstance(v, StepJudgment)
                else replace(v, probabilities={"first": 0.1, "second": 0.2, "equal": 0.6, "neither": 0.1})
                for v in reply.verdicts
            ]
        return replies


@pytest.mark.parametrize(
    ("setting", "requested", "used", "reward"),
    [
        ("discrete", None, "discrete", 5),  # COMPEER's +1/-1: 3 steps + preference + format
        ("expected", None, "expected", 3 * 0.5 + 0.6 + 1),  # 2p-1 per step, E[preference], format by rule
        ("discrete", "expected", "expected", 3.1),  # a request overrides the setting
        ("expected", "discrete", "discrete", 5),
    ],
)
async def test_scoring_is_a_setting_and_a_request_option(
    setting: str, requested: str | None, used: str, reward: float
) -> None:
    body: dict[str, Any] = {"items": [item()]} | ({"scoring": requested} if requested else {})
    async with serve(ProbableJudge(), scoring=setting) as client:
        result = (await client.post("/v1/judge", json=body)).json()["results"][0]
    assert result["scoring"] == used and result["reward"] == pytest.approx(reward)
    assert [s["p_correct"] for s in result["judgments"]["steps"]] == [0.75, 0.75, 0.75]
    assert result["judgments"]["preference"]["probabilities"] == {
        "first": 0.1,
        "second": 0.2,
        "equal": 0.6,
        "neither": 0.1,
    }
    assert result["components"]["without_probability"] == 0


async def test_expected_scoring_without_probabilities_counts_each_discrete_fallback() -> None:
    async with serve(scoring="expected") as client:  # the fake judge gives no probabilities
        result = (await client.post("/v1/judge", json={"items": [item()]})).json()["results"][0]
    assert result["scoring"] == "expected" and result["reward"] == 5
    assert result["components"]["without_probability"] == 4  # three steps and the preference
    assert all(s["p_correct"] is None for s in result["judgments"]["steps"])
    assert result["judgments"]["preference"]["probabilities"] is None
    async with serve(scoring="expected") as client:
        await client.post("/v1/judge", json={"items": [item(), item()]})
        metrics = (await client.get("/metrics")).text
    assert "unifireward_judge_without_probability_total 8.0" in metrics  # every fallback is counted for ops too


async def test_rewards_and_openrlhf_use_the_scoring_too() -> None:
    group = {"history": HISTORY, "reference": "Have you spoken to HR?", "candidates": [EXAMPLE]}
    async with serve(ProbableJudge(), scoring="expected", embedder_url="") as client:
        rewards = (await client.post("/v1/rewards", json={"groups": [group]})).json()
        discrete = (await client.post("/v1/rewards", json={"groups": [group], "scoring": "discrete"})).json()
        label = {"history": HISTORY, "reference": "Have you spoken to HR?"}
        stock = (await client.post("/openrlhf/reward", json={"query": [EXAMPLE], "labels": [label]})).json()
    (candidate,) = rewards["groups"][0]["candidates"]
    assert candidate["judge"]["scoring"] == "expected" and candidate["raw_reward"] == pytest.approx(3.1)
    assert discrete["groups"][0]["candidates"][0]["raw_reward"] == 5
    assert stock["rewards"] == [pytest.approx(3.1)] and stock["extra_logs"]["raw_reward"] == [pytest.approx(3.1)]
