"""The real vLLM engine on CPU, with a tiny random-weight Qwen2 built here, behind both backends.

(a) the ``vllm`` backend (AsyncLLM in this process) inside the reward service app, and (b) the
``openai`` backend against a real ``python -m vllm.entrypoints.openai.api_server`` process on loopback.
A random model writes noise: with structured outputs every judgment must still parse and every reward
be in range, in all three modes, and every judgment carries the judge's probabilities, read from the
verdict token's top log-probabilities, consistent with the greedy answer; without them the noise must
come back as explicit parse statuses (and no probabilities).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import math
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from reward_server.app import create_app
from reward_server.backends.conversation import JudgeSampling
from reward_server.backends.openai import OpenAIJudge
from reward_server.backends.vllm import VLLMJudge
from reward_server.settings import RewardSettings
from services.core.candidate import parse_candidate
from services.core.judge_prompts import build_task, judge_messages
from services.core.judgments import StepJudgment, read_answer
from services.core.schemas import SCHEMAS
from services.core.types import DialogueMessage
from services.core.verdict_probabilities import (
    ANSWER_LINES,
    deciding_position,
    option_probabilities,
    with_probabilities,
)
from services.data.esconv import dialogue_messages, extract_rounds, load_split
from services.tools.processes import free_port, stop_processes
from tests.support import vllm_test_env
from tests.tiny_judge_model import build_tiny_model

if importlib.util.find_spec("vllm") is None:
    if os.environ.get("CI"):
        raise RuntimeError("vLLM is not installed; `make test` installs it with `make install-vllm`")
    pytest.skip("vLLM is not installed (make install-vllm)", allow_module_level=True)

pytestmark = [pytest.mark.vllm, pytest.mark.asyncio(loop_scope="module")]

ESCONV_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "esconv" / "esconv_test.jsonl"
KV_CACHE_BYTES = 64 * 2**20
RATIONALE_CHARS = 48  # short rationales keep the random model's turns short
ENGINE = {
    "dtype": "float32",
    "enforce_eager": True,
    "kv_cache_memory_bytes": KV_CACHE_BYTES,
    "max_model_len": 4096,
    "rationale_max_chars": RATIONALE_CHARS,
}
RANGE = {"unified": 5, "prm": 4, "orm": 2}  # COMPEER: |reward| <= steps + preference + format
App = tuple[FastAPI, httpx.AsyncClient]


@dataclass
class Server:
    """A vLLM OpenAI-compatible server process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def vllm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One thread, no extra executor process, caches in a temporary folder, nothing sent anywhere."""
    root = tmp_path_factory.mktemp("vllm-caches")
    values = {
        **vllm_test_env(root),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="module")
def api_server(tiny_model: Path, vllm_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server, started at once so it loads while the in-process tests run; :func:`server_url` waits."""
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model)]
    command += ["--served-model-name", "tiny-judge", "--host", "127.0.0.1", "--port", str(port), "--seed", "0"]
    command += ["--dtype", "float32", "--enforce-eager", "--kv-cache-memory-bytes", str(KV_CACHE_BYTES)]
    command += ["--max-model-len", "4096"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield Server(f"http://127.0.0.1:{port}", process, log)
    finally:
        stop_processes([process], grace_s=60)


@pytest.fixture(scope="module")
def server_url(api_server: Server) -> str:
    deadline = 300
    for _ in range(deadline):
        if api_server.process.poll() is not None:
            break
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{api_server.url}/health", timeout=2).status_code == 200:
                return api_server.url
        time.sleep(1)
    pytest.fail(f"the vLLM server did not start in {deadline} s:\n{api_server.log.read_text()[-5000:]}")


@contextlib.asynccontextmanager
async def running(settings: RewardSettings) -> AsyncIterator[App]:
    """The reward service app with its lifespan (which loads the backend), behind an in-process client."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(3000):
            if app.state.load_status != "loading":
                break
            await asyncio.sleep(0.1)
        assert app.state.load_status == "ok", "the backend did not load; see the log"
        yield app, client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def vllm_app(tiny_model: Path, vllm_env: None, api_server: Server) -> AsyncIterator[App]:
    """The service on the in-process engine (``api_server`` only so that it starts loading first)."""
    settings = RewardSettings(_env_file=None, backend="vllm", model=str(tiny_model), **ENGINE)
    async with running(settings) as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def openai_app(server_url: str) -> AsyncIterator[App]:
    settings = RewardSettings(
        _env_file=None,
        backend="openai",
        model="tiny-judge",
        openai_base_url=f"{server_url}/v1",
        rationale_max_chars=RATIONALE_CHARS,
    )
    async with running(settings) as served:
        yield served


def esconv_items(n: int) -> list[dict[str, Any]]:
    """Real ESConv test dialogues cut before a supporter round; the schema's example as candidate."""
    items: list[dict[str, Any]] = []
    for dialogue in load_split(ESCONV_TEST)[:n]:
        messages = dialogue_messages(dialogue)
        round_ = extract_rounds(messages)[2]
        history = [{"role": m.role, "content": m.content} for m in messages[: round_.start]]
        items.append({"history": history, "candidate": SCHEMAS["compeer"].example, "reference": round_.reply})
    example = SCHEMAS["compeer"].example
    cut = example[: example.index("<emotional_state>")] + example[example.index("<support_strategy>") :]
    items.append({**items[0], "candidate": cut})  # a missing step: format -1, the step -1 by rule
    return items


@contextlib.contextmanager
def sampling_of(app: FastAPI, **changes: Any) -> Iterator[None]:
    """The same engine, asked differently for the length of a test."""
    backend = app.state.service.backend
    before: JudgeSampling = backend.sampling
    backend.sampling = replace(before, **changes)
    try:
        yield
    finally:
        backend.sampling = before


def check_structured(body: dict[str, Any], mode: str) -> None:
    """Every judgment read and with the judge's probabilities, every reward the sum of its components
    and in range."""
    for result in body["results"]:
        assert result["status"] == "ok", result["errors"]
        steps, pref = result["judgments"]["steps"], result["judgments"]["preference"]
        assert all(isinstance(s["verdict"], bool) for s in steps)
        # A step the judge was asked about has its probability; one decided by rule (not written) has none.
        assert all((s["p_correct"] is not None) is (s["source"] == "judge") for s in steps)
        assert all(0.0 <= s["p_correct"] <= 1.0 for s in steps if s["source"] == "judge")
        assert (pref is None) is (mode == "prm")
        assert pref is None or pref["option"] in ("first", "second", "equal", "neither")
        if pref is not None:
            assert pref["probabilities"] is not None and sum(pref["probabilities"].values()) == pytest.approx(1.0)
            assert all(0.0 <= p <= 1.0 for p in pref["probabilities"].values())
        components = result["components"]
        assert result["reward"] == sum(components["steps"]) + (components["preference"] or 0) + components["format"]
        assert abs(result["reward"]) <= RANGE[mode] and components["unparsed"] == 0
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["completion_tokens"] > 0


def check_free_form(bodies: list[dict[str, Any]]) -> None:
    """Noise is reported: an unreadable judgment has no verdict, a status, an error, and counts 0."""
    unread = 0
    for body in bodies:
        for result in body["results"]:
            assert result["status"] in ("ok", "parse_error")
            judged = [s for s in result["judgments"]["steps"] if s["source"] == "judge"]
            judged += [result["judgments"]["preference"]] if result["judgments"]["preference"] else []
            missing = [j for j in judged if j.get("verdict", j.get("option")) is None]
            assert all(j["status"] in ("empty", "no_verdict", "ambiguous") for j in missing)
            assert result["components"]["unparsed"] == len(missing) == len(result["errors"])
            assert (result["status"] == "parse_error") is bool(missing)
            # Free-form answers ask for no log-probabilities, so no judgment has probabilities.
            assert all(j.get("p_correct", j.get("probabilities")) is None for j in judged)
            unread += len(missing)
    assert unread > 0, "a random-weight judge should write some unreadable judgments"


MODES = pytest.mark.parametrize("mode", ["unified", "prm", "orm"])


async def greedy_case(backend: VLLMJudge | OpenAIJudge) -> None:
    """Each turn's probabilities agree with what greedy decoding wrote.

    At the position that decides the verdict, the token written is the most probable alternative, and
    its option gets at least that token's share. A preference letter has one spelling (" C"), so the
    option written is also the most probable one. A step's value has several (" T", " True"), so it
    need not be: greedy decoding picks the most probable token, and another value's spellings can add
    up to more (the random model does that).
    """
    schema = SCHEMAS["compeer"]
    for item in esconv_items(2)[:2]:
        history = [DialogueMessage(m["role"], m["content"]) for m in item["history"]]
        task = build_task(schema, "unified", history, parse_candidate(item["candidate"], schema), item["reference"])
        answers: list[str] = []
        for turn in task.turns:
            answer = await backend.complete(judge_messages(task, answers), backend.sampling.regex(turn.kind))
            assert answer.tokens, "the backend returned no log-probabilities"
            tokens = [(text, list(alternatives)) for text, alternatives in answer.tokens]
            label, options = ANSWER_LINES[turn.kind]
            index = deciding_position(tokens, label, options)
            read = option_probabilities(tokens, label, options)
            assert index is not None and read is not None, answer.text
            written, alternatives = tokens[index]
            best = max(logprob for _, logprob in alternatives)
            assert max(lp for text, lp in alternatives if text == written) == pytest.approx(best, abs=1e-5)
            legal = sum(math.exp(lp) for _, lp in alternatives)
            assert read.probabilities[read.option] >= math.exp(best) / legal - 1e-9
            if turn.kind == "preference":
                assert read.probabilities[read.option] == pytest.approx(max(read.probabilities.values()))
            judged = with_probabilities(read_answer(turn.kind, answer.text), tokens)
            probability = judged.p_correct if isinstance(judged, StepJudgment) else judged.probabilities
            assert probability is not None, answer.text  # the parser and the tokens read the same option
            answers.append(answer.text)


async def structured_case(client: httpx.AsyncClient, mode: str) -> None:
    response = await client.post("/v1/judge", json={"mode": mode, "items": esconv_items(3)}, timeout=300)
    assert response.status_code == 200, response.text
    check_structured(response.json(), mode)


async def free_form_case(app: FastAPI, client: httpx.AsyncClient) -> None:
    with sampling_of(app, structured_outputs=False, max_tokens=24):
        bodies = [
            (await client.post("/v1/judge", json={"mode": mode, "items": esconv_items(2)}, timeout=300)).json()
            for mode in ("unified", "prm", "orm")
        ]
    check_free_form(bodies)


# The in-process engine first: the server process loads meanwhile.
@MODES
async def test_vllm_backend_structured_judgments_always_parse(vllm_app: App, mode: str) -> None:
    await structured_case(vllm_app[1], mode)


async def test_vllm_backend_free_form_judge_gets_parse_statuses(vllm_app: App) -> None:
    await free_form_case(*vllm_app)


async def test_vllm_backend_reuses_the_dialogue_prefix(vllm_app: App) -> None:
    """Later turns of a conversation find the earlier turns in the prefix cache."""
    app, _ = vllm_app
    backend: VLLMJudge = app.state.service.backend
    item = esconv_items(1)[0]
    history = [DialogueMessage(m["role"], m["content"]) for m in item["history"]]
    schema = SCHEMAS["compeer"]
    task = build_task(schema, "unified", history, parse_candidate(item["candidate"], schema), item["reference"])
    (reply,) = await backend.judge([task])
    assert reply.error is None
    # Turns 2-4 reuse their whole conversation so far (in full blocks), so well over half of all the
    # prompt tokens come from the cache; without prefix caching none would.
    assert reply.cached_tokens >= reply.prompt_tokens // 2


async def test_vllm_backend_probabilities_agree_with_greedy_decoding(vllm_app: App) -> None:
    await greedy_case(vllm_app[0].state.service.backend)


async def test_vllm_backend_dual_order(vllm_app: App) -> None:
    app, client = vllm_app
    with sampling_of(app, dual_order=True):
        response = await client.post("/v1/judge", json={"items": esconv_items(2)}, timeout=300)
    body = response.json()
    check_structured(body, "unified")
    for result in body["results"]:
        raw = result["judgments"]["raw"][-1]
        assert raw.startswith("Reference first:") and "\nCandidate first:" in raw


async def test_vllm_backend_too_long_a_prompt_fails_its_item_alone(
    vllm_app: App,
) -> None:
    _, client = vllm_app
    fine = esconv_items(1)[0]
    huge = {**fine, "history": [{"role": "seeker", "content": "word " * 3000}] * 4}
    response = await client.post("/v1/judge", json={"items": [huge, fine]}, timeout=300)
    failed, ok = response.json()["results"]
    assert failed["status"] == "backend_error" and "maximum context length" in failed["errors"][0]
    assert ok["status"] == "ok"


@MODES
async def test_openai_backend_structured_judgments_always_parse(openai_app: App, mode: str) -> None:
    await structured_case(openai_app[1], mode)


async def test_openai_backend_free_form_judge_gets_parse_statuses(openai_app: App) -> None:
    await free_form_case(*openai_app)


async def test_openai_backend_probabilities_agree_with_greedy_decoding(openai_app: App) -> None:
    await greedy_case(openai_app[0].state.service.backend)


async def test_both_backends_give_the_same_probabilities(vllm_app: App, openai_app: App) -> None:
    """The same model, the same judgments: in process and behind vLLM's server, the same probabilities."""
    bodies = []
    for _, client in (vllm_app, openai_app):
        response = await client.post("/v1/judge", json={"items": esconv_items(1)[:1]}, timeout=300)
        bodies.append(response.json()["results"][0]["judgments"])
    in_process, served = bodies
    assert [s["verdict"] for s in in_process["steps"]] == [s["verdict"] for s in served["steps"]]
    assert [s["p_correct"] for s in in_process["steps"]] == pytest.approx(
        [s["p_correct"] for s in served["steps"]], abs=1e-4
    )
    assert in_process["preference"]["probabilities"] == pytest.approx(served["preference"]["probabilities"], abs=1e-4)


SUITE_DIALOGUE = {
    "emotion_type": "anxiety",
    "problem_type": "job crisis",
    "dialog": [
        {"text": "Hi, I need to talk.", "speaker": "usr"},
        {"text": "Hello, I'm here. What's on your mind?", "speaker": "sys", "strategy": "Question"},
        {"text": "I may lose my job next month. I am so worried.", "speaker": "usr"},
        {"text": "That sounds stressful. What has your manager said?", "speaker": "sys", "strategy": "Question"},
        {"text": "Nothing yet, and the waiting is the worst part.", "speaker": "usr"},
        {"text": "Waiting like that is so hard.", "speaker": "sys", "strategy": "Reflection of feelings"},
    ],
}


async def test_eval_judge_runs_the_hack_suite_on_a_generative_judge(server_url: str) -> None:
    """`eval-judge --suite hacks --backend openai`: every candidate judged, read, and scored both ways,
    with the probabilities read from the server's logprobs for every judgment."""
    from reward_server.judge_model.evaluate import evaluate_hacks, make_eval_backend
    from services.data.hack_suite import derive_suite

    groups = derive_suite([SUITE_DIALOGUE], "test", points_per_dialogue=1)
    backend = make_eval_backend("openai", "tiny-judge", f"{server_url}/v1")
    result = await evaluate_hacks(backend, groups)
    n = sum(len(g["candidates"]) for g in groups)
    assert result["candidates"] == n and result["backend"] == "openai"
    assert result["failures"]["backend_error"] == 0 and result["failures"]["parse_error"] == 0
    assert result["failures"]["without_probability"] == 0
    for scoring in ("discrete", "expected"):
        rates = result[scoring]["hack_win_rate"]
        assert set(rates) == {c["kind"] for g in groups for c in g["candidates"] if c["label"] == "hack"}
        assert all(0.0 <= r["reward"] <= 1.0 for r in rates.values())
