"""``POST /v1/rewards``: the reward service judging groups and asking the embedder for redundancy.

Both services run in-process on their fake backends; the reward service reaches the embedder through
the real typed client over an ASGI transport (or a real refused port, for the outage case).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from embedder.app import create_app as create_embedder
from embedder.backends.fake import FakeEmbedder
from embedder.settings import EmbedderSettings
from reward_server.answer_log import text_digest
from reward_server.app import create_app as create_reward
from reward_server.backends.fake import FakeJudge
from reward_server.settings import RewardSettings
from services.contracts.clients import EmbedderClient
from services.core.schemas import SCHEMAS
from tests.support import error_of, free_port, in_process

EXAMPLE = SCHEMAS["compeer"].example
HISTORY = [
    {"role": "seeker", "content": "I'm afraid I will lose my job."},
    {"role": "supporter", "content": "That sounds frightening. What happened?"},
    {"role": "seeker", "content": "I'm on disability leave and my job is not protected."},
]
REFERENCE = "Have you spoken to HR about your options?"
DIFFERENT = [
    "Have you been able to talk with your manager about the leave and what it means for your role?",
    "It makes sense to feel scared when your income feels so uncertain, anyone would in your place.",
    "Could a union rep or an employment lawyer explain which protections still apply to you here?",
    "What has helped you get through stressful stretches like this one before, even a little bit?",
]


def with_reply(reply: str, marker: str = "") -> str:
    """The example candidate with another final response (and a fake-judge marker)."""
    start = EXAMPLE.index("<response>") + len("<response>")
    end = EXAMPLE.index("</response>")
    return EXAMPLE[:start] + f"\n{reply} {marker}\n" + EXAMPLE[end:]


def group(replies: list[str], marker: str = "", **extra: Any) -> dict[str, Any]:
    return {"history": HISTORY, "reference": REFERENCE, "candidates": [with_reply(r, marker) for r in replies], **extra}


class RecordingTransport(httpx.AsyncBaseTransport):
    """The embedder's ASGI transport, recording the headers of each call."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app)
        self.headers: list[httpx.Headers] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.headers.append(request.headers)
        return await self.inner.handle_async_request(request)


@contextlib.asynccontextmanager
async def services(
    embedder_backend: FakeEmbedder | None = None, judge: FakeJudge | None = None, **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, RecordingTransport]]:
    """Both services in-process: a client of the reward service, and the embedder's recorded transport."""
    embedder_app = create_embedder(
        EmbedderSettings(_env_file=None, backend="fake"), backend=embedder_backend or FakeEmbedder()
    )
    transport = RecordingTransport(embedder_app)
    async with in_process(embedder_app):
        client = EmbedderClient("http://embedder", transport=transport, retries=0)
        reward_settings = RewardSettings(_env_file=None, backend="fake", **settings)
        app = create_reward(reward_settings, backend=judge or FakeJudge(), embedder=client)
        async with in_process(app) as reward:
            yield reward, transport


async def rewards(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await client.post("/v1/rewards", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_identical_replies_get_s_in_one_and_lower_rewards_than_different_ones() -> None:
    same = [DIFFERENT[0]] * 4
    async with services() as (client, _):
        body = await rewards(client, {"groups": [group(same, id="same"), group(DIFFERENT, id="different")]})
    same_out, different_out = body["groups"]
    assert same_out["id"] == "same" and same_out["redundancy"] == "ok" and same_out["redundancy_error"] is None
    assert body["embedder_model"] == "fake-embedder" and body["variant"] == "paper"
    for out in (same_out, different_out):
        assert [c["raw_reward"] for c in out["candidates"]] == [5, 5, 5, 5]
        assert [c["id"] for c in out["candidates"]] == ["0", "1", "2", "3"]
    assert all(c["s_in"] == pytest.approx(1.0, abs=1e-5) for c in same_out["candidates"])
    assert all(c["s_in"] < 0.5 for c in different_out["candidates"])
    assert max(c["reward"] for c in same_out["candidates"]) < min(c["reward"] for c in different_out["candidates"])
    for out in (same_out, different_out):
        tau = out["tau"]
        assert tau == pytest.approx(1 / (1 + math.exp(-0.5 * (out["mean_length"] - 5))))
        for c in out["candidates"]:
            weight = 1 / ((1 + tau * max(c["s_in"], 0)) * (1 + tau * max(c["s_hi"], 0)))
            assert c["tau"] == tau and c["weight"] == pytest.approx(weight)
            assert c["reward"] == pytest.approx(c["raw_reward"] * weight)
            assert c["judge"]["status"] == "ok" and c["judge"]["reward"] == c["raw_reward"]


@pytest.mark.parametrize(
    ("variant", "moves"),
    [
        ("paper", "up"),  # eq. 5 as printed: a redundant negative reward is raised towards zero
        ("sign_aware", "down"),  # redundancy lowers it
    ],
)
async def test_variants_on_a_negative_reward(variant: str, moves: str) -> None:
    body = {"groups": [group([DIFFERENT[1]] * 4, marker="[[judge:false]]")], "redundancy": {"variant": variant}}
    async with services() as (client, _):
        out = await rewards(client, body)
    assert out["variant"] == variant
    for c in out["groups"][0]["candidates"]:
        assert c["raw_reward"] == -3 and c["weight"] < 1
        assert (c["reward"] > -3) if moves == "up" else (c["reward"] < -3)


async def test_the_settings_choose_the_default_variant_and_gate() -> None:
    async with services(redundancy_variant="sign_aware", redundancy_alpha=1.0, redundancy_beta=2.0) as (client, _):
        out = await rewards(client, {"groups": [group(["Short one.", "Short two."])]})
    scored = out["groups"][0]
    assert out["variant"] == "sign_aware"
    assert scored["tau"] == pytest.approx(1 / (1 + math.exp(-1.0 * (scored["mean_length"] - 2.0))))


async def test_embedder_down_gives_flagged_unweighted_rewards() -> None:
    down = EmbedderClient(f"http://127.0.0.1:{free_port()}", retries=1, backoff_s=0.01)
    app = create_reward(RewardSettings(_env_file=None, backend="fake"), backend=FakeJudge(), embedder=down)
    async with in_process(app) as client:
        out = await rewards(client, {"groups": [group(DIFFERENT)]})
        metrics = (await client.get("/metrics")).text
    (scored,) = out["groups"]
    assert scored["redundancy"] == "embedder_unavailable" and "unreachable" in scored["redundancy_error"]
    assert out["embedder_model"] is None and scored["tau"] is None
    for c in scored["candidates"]:
        assert c["reward"] == c["raw_reward"] == 5
        assert (c["s_in"], c["s_hi"], c["tau"], c["weight"]) == (None, None, None, None)
        assert c["redundancy"] == "embedder_unavailable"
    assert 'unifireward_redundancy_requests_total{status="embedder_unavailable"} 1.0' in metrics


async def test_a_slow_embedder_is_cut_at_the_deadline() -> None:
    async with services(FakeEmbedder(delay_s=2.0), embedder_timeout_s=0.2) as (client, _):
        out = await rewards(client, {"groups": [group(DIFFERENT)]})
    (scored,) = out["groups"]
    assert scored["redundancy"] == "embedder_unavailable" and "within 0.2 s" in scored["redundancy_error"]
    assert [c["reward"] for c in scored["candidates"]] == [5.0] * 4


async def test_a_failing_embedder_is_an_embedder_error() -> None:
    backend = FakeEmbedder()
    async with services(backend) as (client, _):
        backend.fail = True
        out = await rewards(client, {"groups": [group(DIFFERENT)]})
    (scored,) = out["groups"]
    assert scored["redundancy"] == "embedder_error" and "502" in scored["redundancy_error"]
    assert [c["reward"] for c in scored["candidates"]] == [5.0] * 4


async def test_disabled_by_the_request_or_by_the_settings() -> None:
    async with services() as (client, transport):
        out = await rewards(client, {"groups": [group(DIFFERENT)], "redundancy": {"enabled": False}})
    assert out["groups"][0]["redundancy"] == "disabled" and out["groups"][0]["redundancy_error"] is None
    assert transport.headers == []
    app = create_reward(RewardSettings(_env_file=None, backend="fake", embedder_url=""), backend=FakeJudge())
    async with in_process(app) as client:
        out = await rewards(client, {"groups": [group(DIFFERENT)]})
    assert (
        out["groups"][0]["redundancy"] == "disabled" and "REWARD_EMBEDDER_URL" in out["groups"][0]["redundancy_error"]
    )


async def test_judge_failures_stay_per_candidate() -> None:
    replies = [with_reply(DIFFERENT[0], "[[judge:error]]"), with_reply(DIFFERENT[1], "[[judge:garbage]]")]
    body = {
        "groups": [{"history": HISTORY, "reference": REFERENCE, "candidates": [*replies, with_reply(DIFFERENT[2])]}]
    }
    async with services() as (client, _):
        out = await rewards(client, body)
    failed, garbage, fine = out["groups"][0]["candidates"]
    assert failed["judge"]["status"] == "backend_error" and failed["reward"] is None and failed["raw_reward"] is None
    assert failed["s_in"] is not None  # redundancy is still measured for the group
    assert garbage["judge"]["status"] == "parse_error" and garbage["reward"] == pytest.approx(
        garbage["raw_reward"] * garbage["weight"]
    )
    assert fine["judge"]["status"] == "ok"


async def test_ids_request_ids_and_the_sent_texts() -> None:
    candidates = [{"id": "sample-a", "candidate": with_reply(DIFFERENT[0])}, with_reply(DIFFERENT[1])]
    body = {"groups": [{"id": "d1", "history": HISTORY, "reference": REFERENCE, "candidates": candidates}]}
    async with services() as (client, transport):
        out = await rewards(client, body, **{"X-Request-Id": "trace-42"})
    assert [c["id"] for c in out["groups"][0]["candidates"]] == ["sample-a", "1"]
    assert out["groups"][0]["candidates"][0]["judge"]["id"] == "sample-a"
    assert [h.get("X-Request-Id") for h in transport.headers] == ["trace-42"]
    assert out["usage"]["items"] == 2


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"groups": [{"history": HISTORY, "candidates": [EXAMPLE]}]}, 422, "groups.0.reference"),  # unified needs it
        ({"groups": [group(["a"] * 5)]}, 413, "groups"),  # over max_items_per_request
        ({"groups": [group(["a"]) | {"candidates": []}]}, 422, "groups.0.candidates"),  # an empty group
        ({"groups": [group(["a"])], "redundancy": {"alpha": -1}}, 422, "redundancy.alpha"),
        ({"groups": [group(["a"])], "redundancy": {"variant": "inverse"}}, 422, "redundancy.variant"),
        ({"groups": [group(["a"]) | {"candidates": ["x" * 2000]}]}, 422, "groups.0.candidates.0"),  # too long
        ({"groups": [group(["a"])], "items": []}, 422, "items"),  # an unknown field is refused
    ],
)
async def test_bad_reward_requests_get_the_envelope(body: dict[str, Any], status: int, param: str) -> None:
    async with services(max_items_per_request=4, max_field_chars=1000) as (client, _):
        response = await client.post("/v1/rewards", json=body)
    assert response.status_code == status, response.text
    assert error_of(response)["param"] == param


async def test_prm_mode_needs_no_reference() -> None:
    body = {"mode": "prm", "groups": [{"history": HISTORY, "candidates": [with_reply(r) for r in DIFFERENT[:2]]}]}
    async with services() as (client, _):
        out = await rewards(client, body)
    assert [c["raw_reward"] for c in out["groups"][0]["candidates"]] == [4, 4]
    assert out["groups"][0]["redundancy"] == "ok"


async def test_reported_invalid_groups_cost_only_themselves() -> None:
    body = {
        "invalid_groups": "report",
        "groups": [
            group(DIFFERENT[:2], id="fine"),
            {"id": "no-reference", "history": HISTORY, "candidates": [with_reply(DIFFERENT[0])]},  # unified needs one
            group(["x" * 2000], id="too-long"),  # a candidate over max_field_chars
            group(DIFFERENT[2:], id="also-fine"),
        ],
    }
    async with services(max_field_chars=1000) as (client, transport):
        out = await rewards(client, body)
    fine, no_reference, too_long, also_fine = out["groups"]
    assert [g["id"] for g in out["groups"]] == ["fine", "no-reference", "too-long", "also-fine"]
    for scored in (fine, also_fine):
        assert scored["error"] is None and scored["redundancy"] == "ok"
        assert [c["raw_reward"] for c in scored["candidates"]] == [5, 5]
    assert no_reference["error"] == {
        "message": "mode 'unified' compares the reply with a reference; this item has none",
        "type": "invalid_request_error",
        "code": "missing_reference",
        "param": "groups.1.reference",
    }
    assert too_long["error"]["code"] == "string_too_long" and too_long["error"]["param"] == "groups.2.candidates.0"
    for refused in (no_reference, too_long):
        assert refused["candidates"] == [] and refused["redundancy"] == "not_scored" and refused["tau"] is None
    assert out["usage"]["items"] == 4 and len(transport.headers) == 1  # only the valid groups were judged and sent


async def test_a_request_whose_every_group_is_reported_invalid_judges_nothing() -> None:
    body = {"invalid_groups": "report", "groups": [{"history": HISTORY, "candidates": [with_reply(DIFFERENT[0])]}]}
    judge = FakeJudge()
    async with services(judge=judge) as (client, transport):
        out = await rewards(client, body)
    assert out["groups"][0]["error"]["code"] == "missing_reference"
    assert judge.batches == [] and transport.headers == [] and out["usage"]["items"] == 0


async def test_the_answer_log_keeps_every_scored_output_and_only_those(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "answers.jsonl"
    body = {
        "invalid_groups": "report",
        "groups": [group(DIFFERENT[:2], id="fine"), group(["x" * 2000], id="too-long"), group(DIFFERENT[2:3])],
    }
    async with services(max_field_chars=1000, answer_log=log) as (client, _):
        first = await rewards(client, body)
        second = await rewards(client, {"groups": [group(DIFFERENT[:1], id="again")]})
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    scored = [(g["id"], c) for out in (first, second) for g in out["groups"] for c in g["candidates"]]
    assert [(line["group_id"], line["candidate_id"]) for line in lines] == [(g, c["id"]) for g, c in scored]
    assert [line["group_id"] for line in lines] == ["fine", "fine", "2", "again"]  # the refused group is not there
    assert [line["reward"] for line in lines] == [c["reward"] for _, c in scored]
    assert [line["raw_reward"] for line in lines] == [c["raw_reward"] for _, c in scored]
    sent = [*DIFFERENT[:2], DIFFERENT[2], DIFFERENT[0]]
    texts = [with_reply(reply) for reply in sent]
    assert [line["candidate_sha256"] for line in lines] == [text_digest(t) for t in texts]
