"""Graceful shutdown of a real ``python -m reward_server`` process on loopback (fake backend).

On SIGTERM the service stops accepting, scores the OpenRLHF groups waiting for their siblings at once
as partial groups, lets the requests in flight finish, and exits within ``REWARD_SHUTDOWN_TIMEOUT_S``
(Kubernetes kills a pod 30 s after SIGTERM).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from reward_server.app import create_app as create_reward
from reward_server.backends.fake import FakeJudge
from reward_server.settings import RewardSettings
from services.tools.processes import free_port, stop_processes
from services.tools.readiness import wait_until_ready
from tests.support import in_process
from tests.test_group_rewards import DIFFERENT, group
from tests.test_openrlhf_reward import label, one, sample

BOUND_S = 10.0  # REWARD_SHUTDOWN_TIMEOUT_S of the test service
JUDGE_DELAY_S = 1.0  # the fake judge's time per batch, so /v1/rewards requests are in flight at SIGTERM


async def test_sigterm_answers_waiting_and_in_flight_requests_and_exits_within_the_bound(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "REWARD_HOST": "127.0.0.1",
        "REWARD_PORT": str(port),
        "REWARD_BACKEND": "fake",
        "REWARD_FAKE_DELAY_S": str(JUDGE_DELAY_S),
        "REWARD_EMBEDDER_URL": "",
        "REWARD_SHUTDOWN_TIMEOUT_S": str(BOUND_S),
        # The default group wait (90 s): without the drain, the waiting samples would hold the exit for it.
    }
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "reward_server"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert wait_until_ready(url, timeout_s=60, process=proc), log.read_text()
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            # 3 of a group of 8 wait for their siblings; 3 /v1/rewards requests are judged, 1 s a batch.
            waiting = [
                asyncio.ensure_future(client.post("/openrlhf/reward", json=sample(r, label("half", group_size=8))))
                for r in DIFFERENT[:3]
            ]
            in_flight = [
                asyncio.ensure_future(client.post("/v1/rewards", json={"groups": [group(DIFFERENT[:2])]}))
                for _ in range(3)
            ]
            await asyncio.sleep(0.5)
            assert not any(f.done() for f in [*waiting, *in_flight])
            signalled = time.monotonic()
            os.kill(proc.pid, signal.SIGTERM)
            answers: list[httpx.Response] = await asyncio.gather(*waiting, *in_flight)
        exit_s = await asyncio.to_thread(_wait_exit, proc, BOUND_S + 5, signalled)
    finally:
        stop_processes([proc], grace_s=1)
    output = log.read_text()
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    for response in answers[:3]:  # scored as the partial group they were, not given the fallback
        reward, logs = one(response.json())
        assert logs["fallback"] == 0.0 and logs["raw_reward"] == 5.0 and reward == 5.0
        assert logs["group_fill"] == 3 / 8
    for response in answers[3:]:
        body: dict[str, Any] = response.json()
        assert [c["reward"] for c in body["groups"][0]["candidates"]] == [5.0, 5.0]
    assert exit_s < BOUND_S, output
    assert "stopping within 10 s: draining" in output and "scoring 1 waiting groups as they are" in output


def _wait_exit(proc: subprocess.Popen[bytes], timeout_s: float, since: float) -> float:
    """Seconds from ``since`` until ``proc`` exited (it is waited for up to ``timeout_s``)."""
    proc.wait(timeout=timeout_s)
    return time.monotonic() - since


async def test_stopping_in_process_scores_waiting_groups_as_partial_groups() -> None:
    app = create_reward(RewardSettings(_env_file=None, backend="fake", embedder_url=""), backend=FakeJudge())
    async with in_process(app) as client:
        pending = asyncio.ensure_future(client.post("/openrlhf/reward", json=sample(DIFFERENT[0], label("w", 4))))
        await asyncio.sleep(0.2)
    # The lifespan drained the gatherer on the way out: a real reward for the quarter of a group that came.
    reward, logs = one((await asyncio.wait_for(pending, 5)).json())
    assert reward == 5.0 and logs["fallback"] == 0.0 and logs["group_fill"] == 0.25
    assert app.state.stopping
