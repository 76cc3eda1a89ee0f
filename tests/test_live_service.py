"""`python -m reward_server` as users run it: a real process on loopback with the CPU judge."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.core.schemas import SCHEMAS
from tests.support import free_port, running

ESCONV_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "esconv" / "esconv_test.jsonl"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {"REWARD_HOST": "127.0.0.1", "REWARD_PORT": str(port), "REWARD_BACKEND": "classifier", "HF_HUB_OFFLINE": "1"}
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("reward-service") / "service.log"
    with running([sys.executable, "-m", "reward_server"], env, url, log):
        yield url


def _test_dialogue() -> tuple[list[dict[str, str]], str]:
    """The first dialogue of ESConv's test split, cut before its fourth supporter message."""
    dialogue = json.loads(ESCONV_TEST.read_text().splitlines()[0])["dialog"]
    supporter_turns = [i for i, turn in enumerate(dialogue) if turn["speaker"] == "sys"]
    cut = supporter_turns[3]
    history = [
        {"role": "seeker" if t["speaker"] == "usr" else "supporter", "content": t["text"]} for t in dialogue[:cut]
    ]
    return history, dialogue[cut]["text"]


def test_judge_over_http_with_the_cpu_judge(service_url: str) -> None:
    history, reference = _test_dialogue()
    example = SCHEMAS["compeer"].example
    start, end = example.index("<emotional_state>"), example.index("</emotional_state>") + len("</emotional_state>")
    items = [
        {"id": "full", "history": history, "candidate": example, "reference": reference},
        {"id": "no-step-2", "history": history, "candidate": example[:start] + example[end:], "reference": reference},
    ]
    response = httpx.post(f"{service_url}/v1/judge", json={"schema": "compeer", "items": items}, timeout=60)
    assert response.status_code == 200, response.text
    full, missing = response.json()["results"]
    assert full["status"] == "ok"
    steps = full["judgments"]["steps"]
    assert [s["step"] for s in steps] == ["history_analysis", "emotional_state", "support_strategy"]
    assert all(isinstance(s["verdict"], bool) and s["rationale"] for s in steps)
    components = full["components"]
    assert full["reward"] == sum(components["steps"]) + components["preference"] + components["format"]
    assert components["format"] == 1
    assert missing["components"]["format"] == -1 and missing["parsed"]["missing"] == ["emotional_state"]
    models = httpx.get(f"{service_url}/v1/models", timeout=5).json()
    assert models["data"][0]["backend"] == "classifier"


def test_bad_requests_over_http(service_url: str) -> None:
    bad_json = httpx.post(
        f"{service_url}/v1/judge", content=b"{", headers={"content-type": "application/json"}, timeout=10
    )
    wrong_type = httpx.post(f"{service_url}/v1/judge", json={"items": "all"}, timeout=10)
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
    assert wrong_type.status_code == 422 and wrong_type.json()["error"]["param"] == "items"
