"""Ray jobs on a real local Ray head (loopback), with both services as real processes (fake backends).

The preflight job reaches both services from a Ray worker, or fails saying which one it could not
reach; the GRPO run's job gets the command as built and its runtime environment reaches the driver and
the workers (a stand-in ``openrlhf.cli.train_ppo_ray``, first on ``PYTHONPATH``, reports both).
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from policy_trainer.launcher import build_command, preflight_command, submit, submit_entrypoint, wait_for_job
from policy_trainer.openrlhf_cli import parse_openrlhf_args
from policy_trainer.preflight import probe
from policy_trainer.settings import JobSettings, TrainerSettings
from tests.support import free_port, running
from unifireward.cli import app

pytest.importorskip("ray.job_submission")
from policy_trainer.ray_head import RayHead, ray_head  # after the skip: psutil comes with Ray

pytestmark = [pytest.mark.slow, pytest.mark.ray]
JOB_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayHead]:
    with ray_head(num_cpus=2) as head:
        yield head


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobSettings]:
    """Both services on loopback; the settings a job needs to reach them from the local Ray head."""
    logs = tmp_path_factory.mktemp("services")
    embedder_url, reward_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    embedder_env = {"EMBEDDER_PORT": embedder_url.rsplit(":", 1)[1], "EMBEDDER_BACKEND": "fake"}
    reward_env = {
        "REWARD_PORT": reward_url.rsplit(":", 1)[1],
        "REWARD_BACKEND": "fake",
        "REWARD_EMBEDDER_URL": embedder_url,
    }
    with (
        running([sys.executable, "-m", "embedder"], embedder_env, embedder_url, logs / "embedder.log"),
        running([sys.executable, "-m", "reward_server"], reward_env, reward_url, logs / "reward.log"),
    ):
        yield JobSettings(python=sys.executable, reward_url=reward_url, embedder_url=embedder_url)


@pytest.fixture(scope="module")
def keyed_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobSettings]:
    """Both services with API keys, the reward service holding the embedder's key, as deployed."""
    logs = tmp_path_factory.mktemp("keyed")
    embedder_url, reward_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    embedder_env = {
        "EMBEDDER_PORT": embedder_url.rsplit(":", 1)[1],
        "EMBEDDER_BACKEND": "fake",
        "EMBEDDER_API_KEYS": "ek-1",
    }
    reward_env = {
        "REWARD_PORT": reward_url.rsplit(":", 1)[1],
        "REWARD_BACKEND": "fake",
        "REWARD_EMBEDDER_URL": embedder_url,
        "REWARD_EMBEDDER_API_KEY": "ek-1",
        "REWARD_API_KEYS": "rk-1",
    }
    with (
        running([sys.executable, "-m", "embedder"], embedder_env, embedder_url, logs / "embedder.log"),
        running([sys.executable, "-m", "reward_server"], reward_env, reward_url, logs / "reward.log"),
    ):
        yield JobSettings(python=sys.executable, reward_url=reward_url, embedder_url=embedder_url)


def test_probe_sends_the_keys_from_the_environment(
    keyed_services: JobSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keyed services: without the keys both checks fail with 401; with them in the environment both pass."""
    urls = (keyed_services.reward_url, keyed_services.embedder_url)
    monkeypatch.delenv("TRAINER_REWARD_API_KEY", raising=False)
    monkeypatch.delenv("TRAINER_EMBEDDER_API_KEY", raising=False)
    refused = asyncio.run(probe(*urls, timeout_s=30))
    assert not refused["ok"]
    assert "401" in refused["reward"]["error"] and "401" in refused["embedder"]["error"], refused
    monkeypatch.setenv("TRAINER_REWARD_API_KEY", "rk-1")
    monkeypatch.setenv("TRAINER_EMBEDDER_API_KEY", "ek-1")
    report = asyncio.run(probe(*urls, timeout_s=30))
    assert report["ok"], report
    assert "rk-1" not in json.dumps(report) and "ek-1" not in json.dumps(report)


def _json_line(logs: str, key: str) -> dict[str, Any]:
    """The one JSON object of the job's log that has ``key``."""
    (line,) = [line for line in logs.splitlines() if line.startswith("{") and f'"{key}"' in line]
    report: dict[str, Any] = json.loads(line)
    return report


def test_probe_from_this_process(services: JobSettings) -> None:
    report = asyncio.run(probe(services.reward_url, services.embedder_url, timeout_s=30))
    assert report["ok"], report
    assert report["reward"]["reward"] == 5  # the fake judge accepts every step and calls the replies equal
    s_in = report["embedder"]["s_in"]
    assert s_in[0] == pytest.approx(s_in[1]) and s_in[0] > s_in[2]  # two of the three replies are the same


def test_preflight_job_reaches_both_services_from_a_worker(cluster: RayHead, services: JobSettings) -> None:
    job_id = submit_entrypoint(cluster.address, preflight_command(services, timeout_s=30), {"env_vars": {}})
    chunks: list[str] = []
    outcome = wait_for_job(cluster.address, job_id, timeout_s=JOB_TIMEOUT_S, on_log=chunks.append)
    assert outcome.succeeded, "".join(chunks)
    report = _json_line("".join(chunks), "preflight")
    assert report["preflight"] == "ok" and report["reward_url"] == services.reward_url
    (node,) = report["nodes"]
    assert node["ok"] and node["node_ip"] == "127.0.0.1"
    assert node["reward"]["reward"] == 5 and node["reward"]["model"] == "fake-judge"
    assert node["reward"]["openrlhf_reward"] > 0  # the stock path's route answered (a group of one)
    assert len(node["embedder"]["s_in"]) == 3 and node["embedder"]["seconds"] >= 0


def test_preflight_command_fails_clearly_when_a_service_is_unreachable(cluster: RayHead, services: JobSettings) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    args = ["preflight", "--address", cluster.address, "--python", sys.executable, "--timeout", "20"]
    result = CliRunner().invoke(app, [*args, "--reward-url", closed, "--embedder-url", services.embedder_url])
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.stderr
    assert f"node 127.0.0.1: reward service: ServiceUnreachableError: GET {closed}/ready" in result.stderr
    (node,) = _json_line(result.stdout, "preflight")["nodes"]
    assert not node["ok"]
    assert "ServiceUnreachableError" in node["reward"]["error"] and closed in node["reward"]["error"]
    assert "error" not in node["embedder"] and node["embedder"]["model"] == "fake-embedder"


STAND_IN = '''
"""Stands in for OpenRLHF's trainer: reports its argv and what the driver and a Ray worker see."""
import json, os, sys
import ray

NAMES = ("TRAINER_REWARD_URL", "NCCL_DEBUG")
ray.init()
worker = ray.get(ray.remote(num_cpus=0)(lambda: {n: os.environ.get(n) for n in NAMES}).remote())
print(json.dumps({"argv": sys.argv[1:], "driver": {n: os.environ.get(n) for n in NAMES}, "worker": worker}))
'''


def test_training_job_gets_the_command_and_its_environment(
    cluster: RayHead, services: JobSettings, tmp_path: Path
) -> None:
    package = tmp_path / "stand-in" / "openrlhf"
    (package / "cli").mkdir(parents=True)
    for init in (package / "__init__.py", package / "cli" / "__init__.py"):  # a regular package shadows the real one
        init.write_text("")
    (package / "cli" / "train_ppo_ray.py").write_text(textwrap.dedent(STAND_IN))
    run = TrainerSettings(
        **services.model_dump(exclude={"job_env"}),
        actor_model="/models/policy",
        prompt_dataset="/data/grpo prompts/it's train.jsonl",  # a space and a quote survive the shell
        reward_source="agent",
        job_env={"PYTHONPATH": str(tmp_path / "stand-in"), "NCCL_DEBUG": "WARN"},
    )
    job_id = submit(run, cluster.address, submission_id=f"grpo-test-{free_port()}")
    chunks: list[str] = []
    outcome = wait_for_job(cluster.address, job_id, timeout_s=JOB_TIMEOUT_S, on_log=chunks.append)
    assert outcome.succeeded, "".join(chunks)
    report = _json_line("".join(chunks), "argv")
    assert report["argv"] == build_command(run)[3:]
    expected = {
        "TRAINER_REWARD_URL": services.reward_url,
        "NCCL_DEBUG": "WARN",
    }
    assert report["driver"] == expected and report["worker"] == expected
    args = parse_openrlhf_args(report["argv"])
    assert args.data.prompt_dataset == run.prompt_dataset and args.reward.remote_url == ["agent"]
