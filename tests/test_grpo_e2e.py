"""GRPO that really trains, on the CPU: OpenRLHF 0.11.2's whole loop with both reward sources, and TRL's
GRPOTrainer, each against both services as real processes (``tests/grpo_smoke.py``, also ``make grpo-smoke``).

About 2 minutes per OpenRLHF run on 2 cores (Ray, vLLM and DeepSpeed start-up included), 30 s for TRL.
Every assertion is on what the run did: the steps' metrics as OpenRLHF logged them, the reward service's
own answer log, the checkpoint, the sockets the run's processes listened on.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from tests.guards import needs_esconv

pytestmark = [
    pytest.mark.slow,
    pytest.mark.ray,
    pytest.mark.vllm,
    needs_esconv,
    pytest.mark.skipif(importlib.util.find_spec("openrlhf") is None, reason="needs make install-train"),
]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    from tests.grpo_smoke import prepare

    work = tmp_path_factory.mktemp("grpo")
    policy, prompts = prepare(work)
    return work, policy, prompts


@pytest.fixture(scope="module", params=["remote", "agent"])
def openrlhf_run(request: pytest.FixtureRequest, work: tuple[Path, Path, Path]) -> dict[str, Any]:
    from tests.grpo_smoke import run_openrlhf

    return run_openrlhf(*work, reward_source=request.param)


def test_openrlhf_runs_the_steps_with_whole_groups_and_no_fallback(openrlhf_run: dict[str, Any]) -> None:
    assert openrlhf_run["steps"] == 2
    assert openrlhf_run["group_fill"] == [1.0, 1.0]
    assert openrlhf_run["fallback"] == [0.0, 0.0]


def test_openrlhf_weight_sync_reaches_the_rollout_engine(openrlhf_run: dict[str, Any]) -> None:
    # After the first update the actor has left the reference (kl > 0), and the engine that sampled the
    # next rollout gave the same log-probs as the actor (vllm_kl at float noise): the sync loaded the weights.
    # A sync that sends but does not load, or a stale tied lm_head, gives vllm_kl of 0.04-0.2 here.
    assert all(kl > 0 for kl in openrlhf_run["kl"][1:]), openrlhf_run["kl"]
    assert all(v < 1e-3 for v in openrlhf_run["vllm_kl"][1:]), openrlhf_run["vllm_kl"]


def test_openrlhf_logged_rewards_are_the_services_answers(openrlhf_run: dict[str, Any]) -> None:
    # One answer per sample in the service's own log (nothing lost, nothing scored twice), and each step's
    # logged reward is the mean of the service's answers for that step's 8 samples.
    assert openrlhf_run["answers"] == 16
    assert openrlhf_run["reward_logged"] == pytest.approx(openrlhf_run["reward_answered"], abs=1e-3)


def test_openrlhf_checkpoint_loads_and_holds_trained_weights(openrlhf_run: dict[str, Any]) -> None:
    assert openrlhf_run["checkpoint_loads"] and openrlhf_run["weights_changed"]


def test_openrlhf_run_listens_on_loopback_only(openrlhf_run: dict[str, Any]) -> None:
    # Ray (GCS, raylet, dashboard, workers), the gloo stores and groups, vLLM and both services.
    assert openrlhf_run["listeners"] > 5
    assert openrlhf_run["listeners_beyond_loopback"] == []


def test_openrlhf_run_passes_every_smoke_check(openrlhf_run: dict[str, Any]) -> None:
    assert openrlhf_run["failures"] == []


def test_a_sync_that_loads_nothing_shows_in_vllm_kl(work: tuple[Path, Path, Path]) -> None:
    # The same run with the engine taking the weights but loading none (what OpenRLHF's NCCL path does on
    # CPU, exit code 0 and all): the checks that pass above must catch it.
    from policy_trainer.cpu.adaptations import SYNC_MODE_VAR
    from tests.grpo_smoke import run_openrlhf

    line = run_openrlhf(*work, reward_source="remote", job_env={SYNC_MODE_VAR: "receive-only"})
    assert line["steps"] == 2 and line["kl"][1] > 0
    assert line["vllm_kl"][1] > 1e-2, line["vllm_kl"]
    assert any("vllm_kl" in failure for failure in line["failures"]), line["failures"]


def test_trl_grpo_trains_on_the_services_rewards(work: tuple[Path, Path, Path]) -> None:
    from tests.grpo_smoke import run_trl

    line = run_trl(work[0], work[1])
    assert line["steps"] == 2 and line["fallbacks"] == 0
    assert line["answers"] == 16
    assert line["reward_logged"] == pytest.approx(line["reward_answered"], abs=1e-5)
    assert line["checkpoint_loads"] and line["weights_changed"]
    assert line["failures"] == []
