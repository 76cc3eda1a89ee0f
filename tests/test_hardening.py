"""What a hostile or careless client cannot do to either service: each test pins one refusal to its envelope."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from embedder.app import create_app as create_embedder
from embedder.backends.fake import FakeEmbedder
from embedder.settings import EmbedderSettings
from reward_server.app import create_app as create_reward
from reward_server.backends.fake import FakeJudge
from reward_server.settings import RewardSettings
from services.contracts import embedder as embedder_contract
from services.contracts import reward as reward_contract
from services.contracts.embedder import EmbeddingRequest
from services.contracts.openrlhf import PromptLabel, parse_label
from services.contracts.reward import JudgeRequest
from services.core.batching import QueueFullError
from services.core.errors import InvalidRequestError, OverloadedError
from services.core.schemas import SCHEMAS
from services.serving.http import HttpMetrics, install_error_handlers, install_middleware
from tests.support import error_of, in_process

EXAMPLE = SCHEMAS["compeer"].example
HISTORY = [{"role": "seeker", "content": "I'm afraid I will lose my job."}]
JSON = {"content-type": "application/json"}


def embedder(**settings: Any) -> Any:
    backend = settings.pop("backend", None) or FakeEmbedder()
    return in_process(create_embedder(EmbedderSettings(_env_file=None, backend="fake", **settings), backend=backend))


def reward(**settings: Any) -> Any:
    return in_process(create_reward(RewardSettings(_env_file=None, backend="fake", **settings), backend=FakeJudge()))


def metric(text: str, route: str, status: int) -> float:
    """One ``http_requests_total`` sample of a /metrics answer (0 when absent)."""
    for line in text.splitlines():
        if "http_requests_total{" in line and f'route="{route}"' in line and f'status="{status}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- the body limit holds for bodies without Content-Length ---------------------------------------------------


class Chunks:
    """A chunked body (no Content-Length) that counts how much of it the server pulled."""

    def __init__(self, body: bytes, size: int) -> None:
        self.parts = [body[i : i + size] for i in range(0, len(body), size)]
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            self.pulled += 1
            yield part


def text_body(chars: int) -> bytes:
    """An embeddings body the service would answer 200 if it read it: one text of ``chars`` characters."""
    return json.dumps({"input": "a" * chars}).encode()


async def test_a_chunked_body_over_the_limit_is_a_413_envelope_without_reading_the_rest() -> None:
    limit = 2048
    body = Chunks(text_body(20_000), 500)
    async with embedder(max_body_bytes=limit) as client:
        over = await client.post("/v1/embeddings", content=body, headers={**JSON, "x-request-id": "chunked-1"})
        under = await client.post("/v1/embeddings", content=Chunks(text_body(1500), 500), headers=JSON)
        metrics = (await client.get("/metrics")).text
    assert over.status_code == 413 and over.headers["x-request-id"] == "chunked-1"
    error = error_of(over)
    assert error["code"] == "request_too_large" and str(limit) in error["message"]
    assert body.pulled <= limit // 500 + 1 < len(body.parts)  # stopped at the limit, the rest never read
    assert under.status_code == 200, under.text  # a chunked body within the limit is read as before
    assert metric(metrics, "/v1/embeddings", 413) == 1


async def test_a_chunked_body_over_the_limit_is_refused_by_the_reward_service_too() -> None:
    items = {"items": [{"history": HISTORY, "candidate": EXAMPLE, "reference": "x" * 3000}]}
    async with reward(max_body_bytes=2048) as client:
        over = await client.post("/v1/judge", content=Chunks(json.dumps(items).encode(), 256), headers=JSON)
    assert over.status_code == 413 and error_of(over)["code"] == "request_too_large"


# --- a million tiny texts cost one check, token ids are not in the contract -----------------------------------


def test_a_million_texts_fail_with_one_error_not_one_per_item() -> None:
    with pytest.raises(ValidationError) as refused:
        EmbeddingRequest.model_validate({"input": ["a"] * 1_000_000})
    errors = refused.value.errors()
    assert len(errors) == 1 and errors[0]["type"] == "request_too_large"
    assert "1000000 texts" in errors[0]["msg"]


async def test_a_huge_list_of_texts_is_a_413_naming_the_limit() -> None:
    body = json.dumps({"input": ["a"] * 200_000})
    async with embedder() as client:
        response = await client.post("/v1/embeddings", content=body, headers=JSON)
    assert response.status_code == 413
    error = error_of(response)
    assert (error["code"], error["param"]) == ("request_too_large", "input")
    assert f"the limit is {embedder_contract.MAX_TEXTS}" in error["message"]


@pytest.mark.parametrize(
    "value",
    [
        [1, 2, 3],  # token ids
        [[1, 2], [3]],  # batches of token ids
        ["a text", 7],  # a text and an id
    ],
)
async def test_token_ids_are_refused_with_a_clear_422(value: list[Any]) -> None:
    async with embedder() as client:
        response = await client.post("/v1/embeddings", json={"input": value})
    assert response.status_code == 422
    error = error_of(response)
    assert (error["code"], error["param"]) == ("unsupported_input", "input")
    assert "token-id input is not supported" in error["message"]


def test_the_input_schema_offers_texts_only() -> None:
    schema = EmbeddingRequest.model_json_schema()["properties"]["input"]
    assert [s["type"] for s in schema["anyOf"]] == ["string", "array"]
    assert schema["anyOf"][1]["items"]["type"] == "string"


# --- labels: any garbage is the documented invalid-label error ------------------------------------------------


def nested(depth: int, kind: str) -> str:
    return {"list": "[" * depth + "]" * depth, "object": '{"a":' * depth + "1" + "}" * depth}[kind]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
garbage = st.one_of(
    st.text(),  # not JSON, mostly
    st.binary(),  # invalid UTF-8 included
    json_values.map(json.dumps),  # JSON, rarely an object
    json_values,  # already decoded
    st.builds(nested, st.integers(1, 20_000), st.sampled_from(["list", "object"])),  # nesting up to 20,000 deep
    st.dictionaries(st.sampled_from(["group_id", "group_size", "schema", "history", "reference", "x"]), json_values),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1).map(lambda s: {"x": s}),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage)
def test_parse_label_raises_nothing_but_its_documented_error(raw: object) -> None:
    try:
        assert isinstance(parse_label(raw), PromptLabel)
    except InvalidRequestError as exc:
        assert exc.param == "labels" and exc.message


@pytest.mark.parametrize("kind", ["list", "object"])
def test_a_label_nested_thousands_deep_is_an_invalid_label(kind: str) -> None:
    with pytest.raises(InvalidRequestError, match="nested too deeply"):
        parse_label(nested(5000, kind))


async def test_a_deep_label_string_is_a_422_not_a_500() -> None:
    body = {"query": ["prompt reply"], "prompts": ["prompt"], "labels": [nested(5000, "list")]}
    async with reward(embedder_url="") as client:
        response = await client.post("/openrlhf/reward", json=body)
    assert response.status_code == 422, response.text
    assert error_of(response)["param"] == "labels.0"


# --- API keys: any header is a plain 401; any failure is an envelope with its request id, counted -------------


@pytest.mark.parametrize(
    "header",
    [
        "Bearer ключ".encode(),  # non-ASCII: compare_digest refuses such str
        b"Bearer \xff\xfe",  # not even UTF-8
        b"Bearer sk-\xc3\xbc-wrong",
    ],
)
async def test_a_non_ascii_key_is_a_plain_401(header: bytes) -> None:
    async with reward(api_keys=[SecretStr("sk-ü")]) as client:
        refused = await client.get("/v1/models", headers={"authorization": header, "x-request-id": "key-1"})
        metrics = (await client.get("/metrics")).text
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "key-1"
    assert error_of(refused)["code"] == "invalid_api_key"
    assert metric(metrics, "unmatched", 401) == 1


async def test_a_non_ascii_key_sent_as_utf8_is_accepted() -> None:
    async with reward(api_keys=[SecretStr("sk-ü")]) as client:
        accepted = await client.get("/v1/models", headers={"authorization": "Bearer sk-ü".encode()})
    assert accepted.status_code == 200


def plumbed_app(**middleware: Any) -> tuple[FastAPI, HttpMetrics]:
    """A bare app with the services' plumbing and routes that fail in each way."""
    app = FastAPI()
    metrics = HttpMetrics("t")
    install_error_handlers(app)
    install_middleware(app, metrics=metrics, max_body_bytes=4096, **middleware)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a secret detail")

    @app.get("/overloaded")
    async def overloaded() -> None:
        raise OverloadedError("busy")

    @app.get("/queue-full")
    async def queue_full() -> None:
        raise QueueFullError("full")

    return app, metrics


async def test_an_unexpected_error_is_an_envelope_with_its_request_id_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, metrics = plumbed_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
        with caplog.at_level(logging.ERROR):
            response = await client.get("/boom", headers={"x-request-id": "boom-1"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "boom-1"
    assert error_of(response) == {
        "message": "internal server error",
        "type": "server_error",
        "code": "internal_error",
        "param": None,
    }
    assert "a secret detail" not in response.text and "a secret detail" in caplog.text  # logged, not shown
    assert metric(metrics.render().body.decode(), "/boom", 500) == 1


# --- every 429 says when to come back ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/overloaded", "/queue-full"])
async def test_every_429_carries_retry_after(path: str) -> None:
    app, _ = plumbed_app(retry_after_s=7)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
        response = await client.get(path)
    assert response.status_code == 429 and response.headers["retry-after"] == "7"


async def test_a_full_queue_429_carries_the_settings_retry_after() -> None:
    async with embedder(backend=FakeEmbedder(delay_s=0.2), max_queued_items=2, max_batch_size=1, retry_after_s=3) as c:
        responses = await asyncio.gather(*[c.post("/v1/embeddings", json={"input": ["a", "b"]}) for _ in range(4)])
    refused = [r for r in responses if r.status_code == 429]
    assert refused and all(r.headers["retry-after"] == "3" for r in refused)
    assert all("retry-after" not in r.headers for r in responses if r.status_code == 200)


# --- the OpenAPI documents and the routes say the same ---------------------------------------------------------


def documents() -> Iterator[dict[str, Any]]:
    yield create_reward(RewardSettings(_env_file=None, backend="fake"), backend=FakeJudge()).openapi()
    yield create_embedder(EmbedderSettings(_env_file=None, backend="fake"), backend=FakeEmbedder()).openapi()


def test_documents_declare_bearer_keys_401_and_retry_after() -> None:
    for document in documents():
        assert document["components"]["securitySchemes"]["bearerAuth"] == {
            "type": "http",
            "scheme": "bearer",
            "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
        }
        protected = 0
        for path, operations in document["paths"].items():
            for operation in operations.values():
                responses = operation["responses"]
                if path in ("/health", "/ready"):
                    assert "security" not in operation and "401" not in responses
                    continue
                protected += 1
                assert operation["security"] == [{"bearerAuth": []}] and "401" in responses, path
                if "429" in responses:
                    assert responses["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
        assert protected >= 3


async def test_405_says_which_methods_are_allowed() -> None:
    async with reward() as client:
        response = await client.get("/v1/judge")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert error_of(response)["code"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
async def test_the_documentation_is_open_when_keys_are_set(path: str) -> None:
    async with reward(api_keys=[SecretStr("sk-1")]) as client:
        response = await client.get(path)
    assert response.status_code == 200


def test_the_schema_says_unified_and_orm_need_a_reference() -> None:
    schema = JudgeRequest.model_json_schema()
    item = {"history": HISTORY, "candidate": EXAMPLE}
    jsonschema.validate({"mode": "prm", "items": [item]}, schema)  # prm: no reference needed
    jsonschema.validate({"items": [{**item, "reference": "ok"}]}, schema)
    for mode in ({}, {"mode": "unified"}, {"mode": "orm"}):
        with pytest.raises(jsonschema.ValidationError, match="reference"):
            jsonschema.validate({**mode, "items": [item]}, schema)
    rewards = reward_contract.RewardsRequest.model_json_schema()
    group = {"candidates": [EXAMPLE]}
    jsonschema.validate({"invalid_groups": "report", "groups": [group]}, rewards)  # reported per group instead
    with pytest.raises(jsonschema.ValidationError, match="reference"):
        jsonschema.validate({"groups": [group]}, rewards)


async def test_a_missing_reference_is_a_422_naming_the_item() -> None:
    async with reward() as client:
        response = await client.post(
            "/v1/rewards",
            json={"mode": "orm", "groups": [{"reference": "r", "candidates": ["a"]}, {"candidates": ["b"]}]},
        )
    assert response.status_code == 422
    assert error_of(response) == {
        "message": "groups.1.reference: mode 'orm' compares the reply with a reference; this item has none",
        "type": "invalid_request_error",
        "code": "missing_reference",
        "param": "groups.1.reference",
    }


def test_schema_caps_match_the_working_limits() -> None:
    embedder_defaults = EmbedderSettings(_env_file=None, backend="fake")
    embedding_input = EmbeddingRequest.model_json_schema()["properties"]["input"]["anyOf"]
    assert embedding_input[0]["maxLength"] == embedder_defaults.max_text_chars
    assert embedding_input[1]["maxItems"] == embedder_defaults.max_texts_per_request
    # The largest embeddings body the schema allows is within a small multiple of the body limit, not gigabytes.
    assert 10 * embedder_defaults.max_body_bytes >= embedder_contract.MAX_TEXTS * embedder_contract.MAX_TEXT
    reward_defaults = RewardSettings(_env_file=None, backend="fake")
    assert reward_defaults.max_field_chars <= reward_contract.MAX_TEXT <= 2 * reward_defaults.max_field_chars
    assert (
        reward_defaults.max_items_per_request <= reward_contract.MAX_ITEMS <= 4 * reward_defaults.max_items_per_request
    )
    candidate = JudgeRequest.model_json_schema()["$defs"]["JudgeItem"]["properties"]["candidate"]
    assert candidate["maxLength"] == reward_contract.MAX_TEXT


# --- settings: keys from a file, no blank key list --------------------------------------------------------------


@pytest.mark.parametrize("value", [" , ", ",", "  "])
def test_a_blank_key_list_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("REWARD_API_KEYS", value)
    with pytest.raises(ValidationError, match="holds no key"):
        RewardSettings(_env_file=None)


def test_keys_come_from_the_file_and_the_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# rotated 2026-11\nsk-file-1\n\n   sk-file-2  \n# sk-retired\n")
    monkeypatch.setenv("EMBEDDER_API_KEYS_FILE", str(keys))
    monkeypatch.setenv("EMBEDDER_API_KEYS", "sk-env")
    settings = EmbedderSettings(_env_file=None)
    assert [k.get_secret_value() for k in settings.api_keys] == ["sk-env", "sk-file-1", "sk-file-2"]
    assert "sk-file-1" not in repr(settings)


@pytest.mark.parametrize("content", ["", "\n  \n", "# only a comment\n"])
def test_a_keys_file_without_keys_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str) -> None:
    keys = tmp_path / "keys"
    keys.write_text(content)
    monkeypatch.setenv("REWARD_API_KEYS_FILE", str(keys))
    with pytest.raises(ValidationError, match="holds no key"):
        RewardSettings(_env_file=None)


def test_a_missing_keys_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REWARD_API_KEYS_FILE", str(tmp_path / "absent"))
    with pytest.raises(ValidationError, match="cannot read the API keys file"):
        RewardSettings(_env_file=None)


async def test_a_key_from_the_file_opens_the_service(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("sk-mounted\n")
    async with reward(api_keys_file=keys) as client:
        without = await client.get("/v1/models")
        with_key = await client.get("/v1/models", headers={"authorization": "Bearer sk-mounted"})
    assert (without.status_code, with_key.status_code) == (401, 200)


# --- a lone surrogate is a clear 422, not a fallback with a traceback --------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ('{"query": ["prompt \\ud800 reply"], "prompts": ["prompt"]}', "query.0"),
        ('{"query": ["prompt reply"], "prompts": ["pr\\udfff"]}', "prompts.0"),
    ],
)
async def test_a_lone_surrogate_in_a_sample_is_a_422(caplog: pytest.LogCaptureFixture, body: str, param: str) -> None:
    async with reward(embedder_url="") as client:
        with caplog.at_level(logging.WARNING):
            response = await client.post("/openrlhf/reward", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert (error["code"], error["param"]) == ("string_unicode", param)
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_retry_after_is_a_positive_number_of_seconds(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("EMBEDDER_RETRY_AFTER_S", value)
    with pytest.raises(ValidationError, match="retry_after_s"):
        EmbedderSettings(_env_file=None)
