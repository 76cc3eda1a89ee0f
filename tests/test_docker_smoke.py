"""The CPU image built on the air-gapped path and the compose stack, for real (``tests/docker_smoke.py``).

One smoke per session (about six minutes on two cores): a dockerd of its own, a debootstrap base image,
the image built from host wheels with no network, ``docker compose up --wait``, a reward request through the
published port, ``docker compose stop`` and ``down``, the daemon stopped by its pid. Where dockerd cannot
start (not root, docker.io or debootstrap missing) the tests fail and say why: they never skip.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

from tests import docker_smoke

pytestmark = [pytest.mark.slow, pytest.mark.docker]

REQUEST = json.loads((docker_smoke.REPO / "docs" / "examples" / "rewards-request.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def smoke() -> Iterator[dict[str, Any]]:
    with docker_smoke.scratch() as work:
        result = docker_smoke.smoke(work)
        result["scratch"] = str(work)
    print(json.dumps(result))
    yield result


def test_every_smoke_check_held(smoke: dict[str, Any]) -> None:
    """Build, up, request, stop: no phase failed and no check on the running stack failed."""
    assert smoke["failures"] == []


def test_the_image_was_built_from_host_wheels_without_network(smoke: dict[str, Any]) -> None:
    """The air-gapped path ran: wheels were built (torch and the project among them), then the build."""
    assert smoke.get("wheels", 0) > 10, smoke["failures"]
    assert smoke["timings_s"].get("build", 0) > 0, smoke["failures"]
    assert smoke.get("image_bytes", 0) > 100_000_000, smoke["failures"]


def test_both_services_came_up_healthy(smoke: dict[str, Any]) -> None:
    assert smoke.get("health") == {"embedder": "healthy", "reward": "healthy"}, smoke["failures"]


def test_the_published_port_answers_a_reward_request(smoke: dict[str, Any]) -> None:
    """The example request's four candidates each got a finite reward; the embedder was reached."""
    answer = smoke.get("answer", {})
    assert answer.get("status") == 200, smoke["failures"]
    expected = {f"{g['id']}/{c['id']}" for g in REQUEST["groups"] for c in g["candidates"]}
    assert set(answer["rewards"]) == expected
    assert all(math.isfinite(r) for r in answer["rewards"].values())
    assert answer["embedder_model"]
    # Rewards are divided by redundancy terms of different candidates: not all equal.
    assert len(set(answer["rewards"].values())) > 1


def test_a_request_without_the_key_is_refused(smoke: dict[str, Any]) -> None:
    assert smoke.get("unkeyed") == {"status": 401, "code": "invalid_api_key"}, smoke["failures"]


def test_both_services_stopped_gracefully_within_the_grace_period(smoke: dict[str, Any]) -> None:
    """SIGTERM, then a complete shutdown: exit 143 (the signal re-raised after shutdown), never 137."""
    assert smoke.get("exit_codes") == {"embedder": 143, "reward": 143}, smoke["failures"]
    assert smoke["timings_s"]["stop"] < docker_smoke.GRACE_S


def test_the_daemon_the_smoke_started_is_gone_and_its_scratch_removed(smoke: dict[str, Any]) -> None:
    pid = smoke.get("dockerd_pid")
    assert isinstance(pid, int)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert not os.path.exists(smoke["scratch"])


def test_a_missing_tool_fails_the_smoke_and_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Where dockerd is not installed the smoke fails at once, naming dockerd and how to install it."""
    real_which = docker_smoke.shutil.which

    def which(name: str, *args: Any, **kwargs: Any) -> str | None:
        return None if name == "dockerd" else real_which(name, *args, **kwargs)

    monkeypatch.setattr(docker_smoke.os, "geteuid", lambda: 0)
    monkeypatch.setattr(docker_smoke.shutil, "which", which)
    result = docker_smoke.smoke(tmp_path)
    assert len(result["failures"]) == 1
    assert "dockerd is not installed" in result["failures"][0]
    assert "docker.io" in result["failures"][0]


def test_an_answer_that_misses_a_candidate_or_the_embedder_is_reported() -> None:
    """The answer check is not vacuous: a dropped candidate, a NaN reward and no embedder are each reported."""
    group = REQUEST["groups"][0]
    candidates = [{"id": c["id"], "reward": 1.0, "redundancy": "ok"} for c in group["candidates"][:-1]]
    candidates[0]["reward"] = math.nan
    body = {"groups": [{"id": group["id"], "candidates": candidates}], "embedder_model": None}
    with pytest.raises(pydantic.ValidationError):  # an invalid body fails the contract first
        docker_smoke.check_answer({"groups": "nonsense"}, REQUEST)
    problems = docker_smoke.check_answer_fields(body, REQUEST)
    assert any("not the request's" in p for p in problems)
    assert any("not a finite number" in p for p in problems)
    assert any("no embedder model" in p for p in problems)
