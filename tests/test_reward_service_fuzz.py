"""Arbitrary JSON bodies never crash a route: a result, or an error in the envelope.

Both services run in-process on their fake backends; the reward service reaches the embedder through
its real client, so ``/v1/rewards`` and ``/openrlhf/reward`` are fuzzed with redundancy on.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedder.app import create_app as create_embedder
from embedder.backends.fake import FakeEmbedder
from embedder.settings import EmbedderSettings
from reward_server.app import create_app
from reward_server.backends.fake import FakeJudge
from reward_server.settings import RewardSettings
from services.contracts.clients import EmbedderClient
from tests.support import in_process

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
_text = st.text(max_size=300)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["seeker", "supporter", "bot"]), "content": st.text(max_size=50)}
)
_history = st.lists(_message, max_size=3)
_reference = st.text(max_size=50) | st.none()
_id = st.text(max_size=10) | st.integers()
_item = st.fixed_dictionaries(
    {"candidate": _text | _json, "history": _history},
    optional={"reference": _reference, "id": _id},
)
_candidate = _text | st.fixed_dictionaries({"candidate": _text}, optional={"id": _id}) | _json
_group = st.fixed_dictionaries(
    {"candidates": st.lists(_candidate, max_size=4) | _json},
    optional={"history": _history | _json, "reference": _reference, "id": _id},
)
_options = st.fixed_dictionaries(
    {},
    optional={
        "enabled": st.booleans() | _json,
        "variant": st.sampled_from(["paper", "sign_aware", "x"]),
        "alpha": st.floats() | st.integers() | st.text(max_size=5),
        "beta": st.floats() | st.integers(),
        "length_unit": st.sampled_from(["words", "tokens", "chars"]),
    },
)
_common = {"schema": st.sampled_from(["compeer", "care", "x"]), "mode": st.sampled_from(["unified", "prm", "orm", 3])}
_judge_body = st.fixed_dictionaries({}, optional={**_common, "items": st.lists(_item, max_size=3) | _json}) | _json
_rewards_body = (
    st.fixed_dictionaries(
        {}, optional={**_common, "groups": st.lists(_group, max_size=3) | _json, "redundancy": _options | _json}
    )
    | _json
)
_redundancy_body = (
    st.fixed_dictionaries(
        {},
        optional={
            "groups": st.lists(
                st.fixed_dictionaries(
                    {"candidates": st.lists(_text | _json, max_size=4)},
                    optional={"history": st.lists(_text | _message | _json, max_size=3), "id": _id},
                ),
                max_size=3,
            )
            | _json,
            "alpha": st.floats() | st.integers(),
            "beta": st.floats() | _json,
            "length_unit": st.sampled_from(["words", "tokens", "x"]),
            "model": st.sampled_from(["fake-embedder", "other"]) | _json,
        },
    )
    | _json
)
_embeddings_body = (
    st.fixed_dictionaries(
        {},
        optional={
            "input": _text | st.lists(_text, max_size=4) | st.lists(st.integers(), max_size=4) | _json,
            "model": st.sampled_from(["fake-embedder", "other"]) | _json,
            "encoding_format": st.sampled_from(["float", "base64", "int8"]),
            "dimensions": st.integers() | _json,
            "user": _text | _json,
        },
    )
    | _json
)
_label = st.fixed_dictionaries(
    {},
    optional={
        **_common,
        "group_id": st.text(max_size=5) | _json,
        "group_size": st.integers(-1, 5) | _json,
        "history": _history | _json,
        "reference": _reference | _json,
        "extra": _json,
    },
)
_labels = st.lists(_label | _label.map(json.dumps) | _text | _json, max_size=3)
_openrlhf_body = (
    st.fixed_dictionaries(
        {},
        optional={
            "query": st.lists(_text | _json, max_size=3) | _json,
            "prompts": st.lists(_text, max_size=3) | _json,
            "labels": _labels | _json,
        },
    )
    | _json
)
_requests = st.lists(
    st.tuples(st.just("/v1/judge"), _judge_body)
    | st.tuples(st.just("/v1/rewards"), _rewards_body)
    | st.tuples(st.just("/v1/redundancy"), _redundancy_body)
    | st.tuples(st.just("/v1/embeddings"), _embeddings_body)
    | st.tuples(st.just("/openrlhf/reward"), _openrlhf_body),
    min_size=1,
    max_size=6,
)
_EMBEDDER_ROUTES = ("/v1/redundancy", "/v1/embeddings")


async def _post_all(requests: list[tuple[str, Any]]) -> list[httpx.Response]:
    embedder_app = create_embedder(EmbedderSettings(_env_file=None, backend="fake"), backend=FakeEmbedder())
    async with in_process(embedder_app) as embedder:
        client = EmbedderClient("http://embedder", transport=httpx.ASGITransport(embedder_app), retries=0)
        # A group that never completes is scored at its wait; keep that short.
        settings = RewardSettings(_env_file=None, backend="fake", cohort_wait_s=0.05)
        app = create_app(settings, backend=FakeJudge(), embedder=client)
        async with in_process(app) as reward:
            # json.dumps writes NaN and Infinity as Python does; a client may send them too.
            headers = {"content-type": "application/json"}
            return [
                await (embedder if path in _EMBEDDER_ROUTES else reward).post(
                    path, content=json.dumps(body), headers=headers
                )
                for path, body in requests
            ]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_requests)
def test_any_body_gets_a_result_or_an_enveloped_error(requests: list[tuple[str, Any]]) -> None:
    for (path, _), response in zip(requests, asyncio.run(_post_all(requests)), strict=True):
        assert response.status_code in (200, 400, 404, 413, 422), (path, response.text)
        body = response.json()
        if response.status_code != 200:
            assert set(body) == {"error"} and body["error"]["message"], body
        elif path == "/v1/judge":
            assert all(r["status"] in ("ok", "parse_error") for r in body["results"])
        elif path == "/v1/rewards":
            assert all(g["redundancy"] in ("ok", "disabled") for g in body["groups"]), body
        elif path == "/openrlhf/reward":
            n = len(body["rewards"])
            assert n == len(body["scores"]) and all(len(v) == n for v in body["extra_logs"].values()), body
            assert all(f == 0.0 for f in body["extra_logs"]["fallback"]), body
