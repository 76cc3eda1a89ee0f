"""The ``openai`` backend against an in-process fake chat-completions server (httpx.MockTransport).

Retries (429 and 503 then success, connect errors), what is not retried (400, timeouts, malformed
answers), the concurrency limit, the request body, the judge's probabilities read from the server's
``top_logprobs`` (and none from a server that sends none, or nonsense), and the whole reward service on
this backend.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from reward_server.backends.base import BackendError, JudgeReply
from reward_server.backends.conversation import JudgeSampling
from reward_server.backends.openai import OpenAIJudge
from services.core.candidate import parse_candidate
from services.core.judge_prompts import JudgeTask, build_task, judgment_regex
from services.core.judgments import StepJudgment
from services.core.schemas import SCHEMAS
from services.core.types import DialogueMessage
from tests.test_reward_service import item, serve

COMPEER = SCHEMAS["compeer"]
Handler = Callable[[httpx.Request], httpx.Response]


def task(mode: str = "orm") -> JudgeTask:
    history = [DialogueMessage("seeker", "I lost my job.")]
    return build_task(COMPEER, mode, history, parse_candidate(COMPEER.example, COMPEER), "Have you talked to HR?")  # type: ignore[arg-type]


#: The fake judge's distribution at the token that writes its value (it writes the most likely).
STEP_VALUE = {" True": 0.75, " False": 0.25}
PREFERENCE_VALUE = {" C": 0.5, " B": 0.3, " A": 0.1, " D": 0.1}


def token_logprobs(tokens: list[str], value: dict[str, float], top: int) -> dict[str, Any]:
    """OpenAI's ``choices[0].logprobs``: each token sure of itself but the last, which has ``value``."""
    content = [{"token": t, "logprob": 0.0, "top_logprobs": [{"token": t, "logprob": 0.0}][:top]} for t in tokens]
    alternatives = [{"token": t, "logprob": math.log(p)} for t, p in value.items()]
    content[-1] = {"token": tokens[-1], "logprob": math.log(value[tokens[-1]]), "top_logprobs": alternatives[:top]}
    return {"content": content}


def chat_answer(body: dict[str, Any]) -> httpx.Response:
    """What a judge server answers: a verdict or a preference, by the last user message; with the top
    log-probabilities of its tokens when asked."""
    if "Second reply" in body["messages"][-1]["content"]:
        tokens, value = ["Compared", ".\n", "Preference", ":", " C"], PREFERENCE_VALUE
    else:
        tokens, value = ["Fits", ".\n", "Verdict", ":", " True"], STEP_VALUE
    choice: dict[str, Any] = {"message": {"content": "".join(tokens)}, "finish_reason": "stop"}
    if body.get("logprobs"):
        choice["logprobs"] = token_logprobs(tokens, value, body.get("top_logprobs", 0))
    usage = {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
    return httpx.Response(200, json={"choices": [choice], "usage": usage})


class FakeServer:
    """Answers chat completions after the scripted failures; records the bodies it saw."""

    def __init__(self, failures: list[Callable[[], httpx.Response]] | None = None) -> None:
        self.failures = list(failures or [])
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        self.bodies.append(json.loads(request.content))
        self.headers.append(request.headers)
        if self.failures:
            return self.failures.pop(0)()
        return chat_answer(self.bodies[-1])


def status(code: int) -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(code, json={"error": {"message": f"status {code}"}})


def raising(exc: type[httpx.TransportError]) -> Callable[[], httpx.Response]:
    def fail() -> httpx.Response:
        raise exc("scripted failure")

    return fail


def judge_on(handler: Handler | FakeServer, **kwargs: Any) -> OpenAIJudge:
    kwargs.setdefault("backoff_s", 0.001)
    return OpenAIJudge(
        "http://judge.test/v1", "tiny-judge", transport=httpx.MockTransport(handler), max_retries=2, **kwargs
    )


async def judged(judge: OpenAIJudge, tasks: list[JudgeTask]) -> list[Any]:
    await judge.start()
    try:
        return await judge.judge(tasks)
    finally:
        await judge.close()


@pytest.mark.parametrize(
    ("failures", "attempts"),
    [
        ([status(429)], 2),  # busy once: retried
        ([status(503), status(503)], 3),  # unavailable twice: retried up to max_retries
        ([raising(httpx.ConnectError)], 2),  # the connection was refused: retried
        ([raising(httpx.ConnectTimeout)], 2),  # the connection was never made: retried
        ([raising(httpx.RemoteProtocolError)], 2),  # a pooled connection the server had closed: retried
    ],
)
async def test_retryable_failures_are_retried(failures: list[Callable[[], httpx.Response]], attempts: int) -> None:
    server = FakeServer()
    judge = judge_on(server)
    await judge.start()
    server.failures, server.bodies = failures, []
    (reply,) = await judge.judge([task()])
    await judge.close()
    assert reply.error is None and reply.raw[0].endswith("Preference: C")
    assert len(server.bodies) == attempts


@pytest.mark.parametrize(
    ("failure", "attempts", "message"),
    [
        (status(400), 1, "answered 400"),  # a bad request is not retried
        (status(500), 1, "answered 500"),  # nor a server error that may have done the work
        (raising(httpx.ReadTimeout), 1, "timed out"),  # nor a timeout: the request may be running
        (raising(httpx.ReadError), 1, "cannot reach"),  # nor a connection broken while reading the answer
        (lambda: httpx.Response(200, json={"choices": []}), 1, "not a chat completion"),  # malformed
        (lambda: httpx.Response(200, text="<html>"), 1, "not a chat completion"),  # not JSON
    ],
)
async def test_other_failures_become_backend_errors_at_once(
    failure: Callable[[], httpx.Response], attempts: int, message: str
) -> None:
    server = FakeServer()
    judge = judge_on(server)
    await judge.start()
    server.failures, server.bodies = [failure], []
    fine, failed = await judge.judge([task(), task()])
    await judge.close()
    assert fine.error is None or failed.error is None  # the failure hits one task only
    error = fine.error or failed.error
    assert error is not None and message in error
    assert len(server.bodies) == 2 + attempts - 1


async def test_429_every_time_gives_up_after_max_retries() -> None:
    server = FakeServer()
    judge = judge_on(server)
    await judge.start()
    server.failures, server.bodies = [status(429)] * 10, []
    (reply,) = await judge.judge([task()])
    await judge.close()
    assert reply.error is not None and "429 after 3 attempts" in reply.error
    assert len(server.bodies) == 3


async def test_the_request_carries_the_conversation_sampling_and_regex() -> None:
    server = FakeServer()
    sampling = JudgeSampling(seed=7, max_tokens=1000, rationale_max_chars=100)
    replies = await judged(judge_on(server, sampling=sampling, api_key=SecretStr("sk-test")), [task("unified")])
    assert replies[0].error is None and replies[0].prompt_tokens == 80 and replies[0].completion_tokens == 20
    body = server.bodies[-1]
    assert body["model"] == "tiny-judge"
    assert (body["temperature"], body["seed"], body["max_tokens"]) == (0.0, 7, 1000)
    assert body["structured_outputs"] == {"regex": judgment_regex("preference", 100)}
    assert (body["logprobs"], body["top_logprobs"]) == (True, 5)
    assert [m["role"] for m in body["messages"]] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert server.headers[-1]["authorization"] == "Bearer sk-test"


async def test_free_form_requests_carry_no_regex_and_no_key() -> None:
    server = FakeServer()
    await judged(judge_on(server, sampling=JudgeSampling(structured_outputs=False, seed=None)), [task()])
    assert all("structured_outputs" not in b and "seed" not in b for b in server.bodies)
    assert all("logprobs" not in b and "top_logprobs" not in b for b in server.bodies)  # free form: no probabilities
    assert "authorization" not in server.headers[-1]


def probabilities(reply: JudgeReply) -> list[Any]:
    """Each turn's probability: a step's p_correct, the preference's distribution."""
    return [v.p_correct if isinstance(v, StepJudgment) else v.probabilities for v in reply.verdicts]


async def test_the_judges_probabilities_come_from_the_servers_top_logprobs() -> None:
    (reply,) = await judged(judge_on(FakeServer()), [task("unified")])
    assert reply.error is None
    *steps, preference = probabilities(reply)
    assert steps == [pytest.approx(0.75)] * 3
    assert preference == pytest.approx({"equal": 0.5, "second": 0.3, "first": 0.1, "neither": 0.1})


async def test_fewer_top_logprobs_renormalise_over_the_options_they_show() -> None:
    server = FakeServer()
    (reply,) = await judged(judge_on(server, sampling=JudgeSampling(top_logprobs=2)), [task("unified")])
    assert server.bodies[-1]["top_logprobs"] == 2
    *steps, preference = probabilities(reply)
    assert steps == [pytest.approx(0.75)] * 3
    assert preference == pytest.approx({"equal": 0.5 / 0.8, "second": 0.3 / 0.8, "first": 0.0, "neither": 0.0})


def answering(logprobs: Any) -> Handler:
    """A server that answers like the fake judge but with these ``logprobs`` (absent when None)."""

    def handler(request: httpx.Request) -> httpx.Response:
        answer = json.loads(chat_answer(json.loads(request.content)).content)
        answer["choices"][0].pop("logprobs", None)
        if logprobs is not None:
            answer["choices"][0]["logprobs"] = logprobs
        return httpx.Response(200, json=answer)

    return handler


@pytest.mark.parametrize(
    "logprobs",
    [
        None,  # a server that ignores the request for logprobs
        {"content": None},  # or answers it with nothing
        {"content": []},
        {"content": "garbage"},  # nonsense in the field
        {"content": [{"token": 7, "logprob": "high"}]},
        {"content": [{"token": "Verdict:", "logprob": 0.0}, {"token": " True", "logprob": -0.1}]},  # no top_logprobs
        {"content": [{"token": " Maybe", "logprob": -0.1, "top_logprobs": [{"token": " True", "logprob": -0.1}]}]},
    ],
)
async def test_a_server_without_readable_logprobs_gives_judgments_without_probabilities(logprobs: Any) -> None:
    (reply,) = await judged(judge_on(answering(logprobs)), [task("unified")])
    assert reply.error is None and reply.verdicts[-1].preference == "equal"  # judged all the same
    assert probabilities(reply) == [None] * 4


async def test_no_logprobs_are_asked_for_when_top_logprobs_is_0() -> None:
    server = FakeServer()
    (reply,) = await judged(judge_on(server, sampling=JudgeSampling(top_logprobs=0)), [task()])
    assert all("logprobs" not in b and "top_logprobs" not in b for b in server.bodies)
    assert probabilities(reply) == [None]


async def test_dual_order_averages_both_orders_probabilities() -> None:
    server = FakeServer()
    (reply,) = await judged(judge_on(server, sampling=JudgeSampling(dual_order=True)), [task()])
    (preference,) = reply.verdicts
    # Both orders answer C with the same distribution; the swapped one's A and B are read back as B and A.
    assert preference.preference == "equal"
    assert preference.probabilities == pytest.approx({"equal": 0.5, "first": 0.2, "second": 0.2, "neither": 0.1})


async def test_concurrency_limit() -> None:
    in_flight = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return chat_answer(json.loads(request.content))

    judge = OpenAIJudge("http://judge.test/v1", "m", transport=httpx.MockTransport(slow), max_concurrency=3)
    replies = await judged(judge, [task() for _ in range(12)])
    assert all(r.error is None for r in replies)
    assert peak == 3


async def test_start_fails_when_the_server_does_not_answer() -> None:
    judge = judge_on(FakeServer([status(401)]))
    with pytest.raises(BackendError, match="warm-up"):
        await judge.start()
    await judge.close()


async def test_judge_before_start_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="not started"):
        await judge_on(FakeServer()).judge([task()])


async def test_the_reward_service_on_the_openai_backend() -> None:
    server = FakeServer()
    busy_once: list[Callable[[], httpx.Response]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if b"refuse me" in request.content:
            return status(400)()
        if busy_once and b"Second reply" in request.content:
            return busy_once.pop()()
        return server(request)

    doomed = COMPEER.example.replace("</response>", "refuse me\n</response>")
    async with serve(judge_on(handler)) as client:
        busy_once.append(status(429))  # after the warm-up
        response = await client.post("/v1/judge", json={"items": [item(doomed), item()]})
    assert response.status_code == 200
    failed, fine = response.json()["results"]
    assert failed["status"] == "backend_error" and "400" in failed["errors"][0]
    assert fine["status"] == "ok" and fine["reward"] == 5  # its preference turn was retried after a 429
    assert not busy_once
    assert response.json()["usage"]["prompt_tokens"] == 80


async def test_expected_scoring_on_the_openai_backend() -> None:
    async with serve(judge_on(FakeServer()), scoring="expected") as client:
        response = await client.post("/v1/judge", json={"items": [item()]})
    (result,) = response.json()["results"]
    assert result["status"] == "ok" and result["scoring"] == "expected"
    assert [s["p_correct"] for s in result["judgments"]["steps"]] == [pytest.approx(0.75)] * 3
    assert result["judgments"]["preference"]["probabilities"] == pytest.approx(
        {"first": 0.1, "second": 0.3, "equal": 0.5, "neither": 0.1}
    )
    # 3 steps of 2 * 0.75 - 1, the preference's 0.3 + 0.5 - 0.1 - 0.1, format +1
    assert result["reward"] == pytest.approx(3 * 0.5 + 0.6 + 1)
    assert result["components"]["without_probability"] == 0
