"""Arbitrary JSON bodies never crash the judge route: a result, or an error in the envelope."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reward_server.app import create_app
from reward_server.backends.fake import FakeJudge
from reward_server.settings import RewardSettings

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["seeker", "supporter", "bot"]), "content": st.text(max_size=50)}
)
_item = st.fixed_dictionaries(
    {"candidate": st.text(max_size=300) | _json, "history": st.lists(_message, max_size=3)},
    optional={"reference": st.text(max_size=50) | st.none(), "id": st.text(max_size=10) | st.integers()},
)
_body = (
    st.fixed_dictionaries(
        {},
        optional={
            "schema": st.sampled_from(["compeer", "care", "x"]),
            "mode": st.sampled_from(["unified", "prm", "orm", 3]),
            "items": st.lists(_item, max_size=3) | _json,
        },
    )
    | _json
)


async def _post_all(bodies: list[Any]) -> list[httpx.Response]:
    app = create_app(RewardSettings(_env_file=None, backend="fake"), backend=FakeJudge())
    transport = httpx.ASGITransport(app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        while app.state.load_status == "loading":
            await asyncio.sleep(0.005)
        return [await client.post("/v1/judge", json=body) for body in bodies]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_body, min_size=1, max_size=5))
def test_any_body_gets_a_result_or_an_enveloped_error(bodies: list[Any]) -> None:
    for response in asyncio.run(_post_all(bodies)):
        assert response.status_code in (200, 400, 413, 422), response.text
        body = response.json()
        if response.status_code == 200:
            assert all(r["status"] in ("ok", "parse_error") for r in body["results"])
        else:
            assert set(body) == {"error"} and body["error"]["message"]
