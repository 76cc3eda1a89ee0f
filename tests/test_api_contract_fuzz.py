"""Both services against their own OpenAPI documents: schemathesis generates requests from each operation
(valid and invalid ones) and checks that no answer is a server error and every answer is one the document
describes (status code and body schema). In-process over ASGI, on the fake backends.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from embedder.app import create_app as create_embedder
from embedder.backends.fake import FakeEmbedder
from embedder.settings import EmbedderSettings
from reward_server.app import create_app as create_reward
from reward_server.backends.fake import FakeJudge
from reward_server.settings import RewardSettings

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def reward_app(**keys: Any) -> FastAPI:
    # No embedder URL: /v1/rewards answers unweighted rather than waiting on a service not started here;
    # a short cohort wait: /openrlhf/reward scores a partial group soon rather than waiting for its siblings.
    config = RewardSettings(_env_file=None, backend="fake", embedder_url="", cohort_wait_s=0.05, **keys)
    return create_reward(config, backend=FakeJudge())


def embedder_app(**keys: Any) -> FastAPI:
    return create_embedder(EmbedderSettings(_env_file=None, backend="fake", **keys), backend=FakeEmbedder())


reward_schema = schemathesis.openapi.from_asgi("/openapi.json", reward_app())
embedder_schema = schemathesis.openapi.from_asgi("/openapi.json", embedder_app())


@pytest.fixture
def app(request: pytest.FixtureRequest) -> FastAPI:
    """A fresh app for each operation: schemathesis runs its lifespan for one test and ends it after.

    The tests named ``keyed`` get an app with an API key that their requests do not carry.
    """
    keys = {"api_keys": [SecretStr("sk-fuzz")]} if "keyed" in request.function.__name__ else {}
    return reward_app(**keys) if "reward" in request.function.__name__ else embedder_app(**keys)


@reward_schema.parametrize()
@FUZZ
def test_reward_service_answers_as_documented(case: schemathesis.Case, app: FastAPI) -> None:
    case.call_and_validate(checks=CHECKS, app=app)


@embedder_schema.parametrize()
@FUZZ
def test_embedder_answers_as_documented(case: schemathesis.Case, app: FastAPI) -> None:
    case.call_and_validate(checks=CHECKS, app=app)


# Without the key every protected operation answers 401, which its document must list (and /health does not).
KEYED = settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@reward_schema.parametrize()
@KEYED
def test_keyed_reward_service_answers_as_documented(case: schemathesis.Case, app: FastAPI) -> None:
    case.call_and_validate(checks=CHECKS, app=app)


@embedder_schema.parametrize()
@KEYED
def test_keyed_embedder_answers_as_documented(case: schemathesis.Case, app: FastAPI) -> None:
    case.call_and_validate(checks=CHECKS, app=app)
