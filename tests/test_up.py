"""`unifireward up` (what `make run` starts): both services on loopback with the CPU defaults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from services.tools.readiness import wait_until_ready
from tests.support import free_port, stop_processes

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def test_up_serves_both_services_and_stops_them_together(tmp_path: Path) -> None:
    reward_port, embedder_port = free_port(), free_port()
    env = {
        **os.environ,
        "REWARD_PORT": str(reward_port),
        "EMBEDDER_PORT": str(embedder_port),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("REWARD_EMBEDDER_URL", None)
    log_path = tmp_path / "up.log"
    reward, embedder = f"http://127.0.0.1:{reward_port}", f"http://127.0.0.1:{embedder_port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "unifireward.cli", "up"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            for url in (embedder, reward):
                assert wait_until_ready(url, timeout_s=180, process=proc), log_path.read_text()
            vectors = httpx.post(f"{embedder}/v1/embeddings", json={"input": ["I hear you."]}, timeout=30).json()
            assert len(vectors["data"][0]["embedding"]) == 384
            body = json.loads((EXAMPLES / "rewards-request.json").read_text())
            answer = httpx.post(f"{reward}/v1/rewards", json=body, timeout=60)
            assert answer.status_code == 200, answer.text
            (group,) = answer.json()["groups"]
            assert group["redundancy"] == "ok" and answer.json()["embedder_model"] == "all-MiniLM-L6-v2"
            twins, other = group["candidates"][:2], group["candidates"][2:]
            assert min(c["s_in"] for c in twins) > max(c["s_in"] for c in other)
            for c in group["candidates"]:
                assert c["judge"]["status"] == "ok" and c["reward"] is not None
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        finally:
            stop_processes([proc])
    for url in (embedder, reward):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/health", timeout=2)
