"""GRPO end to end on the CPU: OpenRLHF 0.11.2's whole loop (both reward sources) and TRL's GRPOTrainer.

``make grpo-smoke`` runs ``python -m tests.grpo_smoke``; ``tests/test_grpo_e2e.py`` runs the same runs and
asserts on the same checks. Each run trains the tests' tiny random Qwen2 (2 layers, hidden 128) on ESConv
train prompts (2 prompts x 4 samples per step) against both services as real processes on loopback (the
CPU judge and the MiniLM embedder, their defaults), and prints one JSON line: what it did and the checks.

The checks, on what the run did (never its exit code alone):
- the steps asked for were logged; every step's ``group_fill`` is 1 and ``fallback`` 0;
- ``vllm_kl`` (rollout vs actor log-probs) < 1e-3 at every step after the first, while the actor moved away
  from the reference (``kl`` > 0): the weights the actor learnt reached the vLLM engine;
- the rewards the trainer logged are the mean of those the reward service answered for the step's samples,
  read from the service's own answer log (``REWARD_ANSWER_LOG``), which has exactly one answer per sample;
- a checkpoint was written, loads with transformers, and differs from the initial policy;
- nothing the run started listened beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from pathlib import Path
from typing import Any

from policy_trainer.local_run import LocalRun, run_local, services
from policy_trainer.prompts import dialogue_rows
from policy_trainer.settings import TrainerSettings
from services.data.esconv import load_split, split_path

ESCONV_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "esconv"
STEPS = 2
PROMPTS_PER_STEP = 2
SAMPLES = 4
#: Largest vllm_kl after the first step: a synced engine is at float noise (about 1e-5 here).
MAX_VLLM_KL = 1e-3
LOOPBACK = ("127.0.0.1:", "::ffff:127.0.0.1:", "::1:")


def prompt_rows(count: int, data_dir: Path = ESCONV_DIR) -> list[dict[str, Any]]:
    """One prompt row from each of the first ``count`` ESConv train dialogues (groups of 4)."""
    dialogues = load_split(split_path(data_dir, "train"))
    return [dialogue_rows("train", d, dialogues[d], group_size=SAMPLES)[0] for d in range(count)]


def prepare(work: Path) -> tuple[Path, Path]:
    """The tiny policy and a prompt file, in ``work``."""
    from tests.tiny_judge_model import build_tiny_model

    policy = build_tiny_model(work / "policy")
    prompts = work / "prompts.jsonl"
    rows = prompt_rows(STEPS * PROMPTS_PER_STEP)
    prompts.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return policy, prompts


def settings(policy: Path, prompts: Path, reward_source: str, job_env: dict[str, str] | None = None) -> TrainerSettings:
    """The smoke's run: tiny lengths, a large learning rate without warm-up, so that one step moves the actor."""
    return TrainerSettings(
        _env_file=None,
        actor_model=str(policy),
        prompt_dataset=str(prompts),
        reward_source=reward_source,
        n_samples_per_prompt=SAMPLES,
        rollout_batch_size=PROMPTS_PER_STEP,
        train_batch_size=PROMPTS_PER_STEP * SAMPLES,
        rollout_micro_batch_size=SAMPLES,
        train_micro_batch_size=SAMPLES,
        max_new_tokens=24,
        actor_lr=1e-2,
        zero_stage=2,
        gradient_checkpointing=False,
        output_dir="ckpt",
        extra_args=["--actor.lr_warmup_ratio", "0"],
        job_env=job_env or {},
    )


def weights_changed(initial: Path, trained: Path) -> tuple[bool, bool]:
    """Whether ``trained`` loads with transformers, and whether any of its weights differ from ``initial``'s."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        after = AutoModelForCausalLM.from_pretrained(trained, torch_dtype=torch.float32).state_dict()
    except (OSError, ValueError):
        return False, False
    before = AutoModelForCausalLM.from_pretrained(initial, torch_dtype=torch.float32).state_dict()
    changed = any(not torch.equal(before[k], after[k]) for k in before if k in after)
    return True, changed


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def openrlhf_summary(run: LocalRun, reward_source: str, policy: Path) -> dict[str, Any]:
    """The run's line: its figures, and ``failures`` (empty when every check holds)."""
    per_step = PROMPTS_PER_STEP * SAMPLES
    logged = [float(s["reward"]) for s in run.steps]
    answered = [
        _mean([float(a["reward"]) for a in run.answers[i * per_step : (i + 1) * per_step]]) for i in range(STEPS)
    ]
    loads, changed = weights_changed(policy, run.output_dir)
    outside = sorted(f"{addr} ({name})" for addr, name in run.listeners.items() if not addr.startswith(LOOPBACK))
    summary: dict[str, Any] = {
        "framework": "openrlhf",
        "reward_source": reward_source,
        "steps": len(run.steps),
        "group_fill": [s.get("group_fill") for s in run.steps],
        "fallback": [s.get("fallback") for s in run.steps],
        "vllm_kl": [s.get("vllm_kl") for s in run.steps],
        "kl": [s.get("kl") for s in run.steps],
        "reward_logged": logged,
        "reward_answered": answered,
        "answers": len(run.answers),
        "checkpoint_loads": loads,
        "weights_changed": changed,
        "listeners": len(run.listeners),
        "listeners_beyond_loopback": outside,
        "wall_s": round(run.wall_s, 1),
        "peak_memory_gib": round(run.peak_rss_bytes / 2**30, 2),
    }
    summary["failures"] = openrlhf_failures(summary)
    return summary


def openrlhf_failures(summary: dict[str, Any]) -> list[str]:
    """Every check the run's line does not pass, in words."""
    failures = []
    if summary["steps"] != STEPS:
        failures.append(f"{summary['steps']} steps logged, not {STEPS}")
    if any(fill != 1 for fill in summary["group_fill"]):
        failures.append(f"group_fill {summary['group_fill']}: groups were not scored whole")
    if any(fallback != 0 for fallback in summary["fallback"]):
        failures.append(f"fallback {summary['fallback']}: samples got the fallback reward")
    later_vllm_kl, later_kl = summary["vllm_kl"][1:], summary["kl"][1:]
    if not later_vllm_kl or any(v is None or not v < MAX_VLLM_KL for v in later_vllm_kl):
        failures.append(f"vllm_kl {summary['vllm_kl']}: the rollout engine does not hold the actor's weights")
    if not later_kl or any(v is None or not v > 0 for v in later_kl):
        failures.append(f"kl {summary['kl']}: the actor did not move away from the reference")
    if summary["answers"] != STEPS * PROMPTS_PER_STEP * SAMPLES:
        failures.append(f"{summary['answers']} answers in the service's log, not one per sample")
    pairs = zip(summary["reward_logged"], summary["reward_answered"], strict=False)
    if len(summary["reward_logged"]) != STEPS or any(not abs(a - b) < 1e-3 for a, b in pairs):
        failures.append(f"logged rewards {summary['reward_logged']} != answered {summary['reward_answered']}")
    if not summary["checkpoint_loads"]:
        failures.append("no checkpoint that transformers loads")
    elif not summary["weights_changed"]:
        failures.append("the checkpoint holds the initial weights")
    if not summary["listeners"]:
        failures.append("no listening socket seen: the watch did not work")
    if summary["listeners_beyond_loopback"]:
        failures.append(f"listening beyond loopback: {summary['listeners_beyond_loopback']}")
    return failures


def run_openrlhf(
    work: Path, policy: Path, prompts: Path, reward_source: str, job_env: dict[str, str] | None = None
) -> dict[str, Any]:
    """One OpenRLHF run (``train --local``'s code) and its line; ``job_env`` goes to every process of the run."""
    name = "-".join([f"openrlhf-{reward_source}", *(v for v in (job_env or {}).values())])
    run = run_local(settings(policy, prompts, reward_source, job_env), STEPS, work / name)
    return openrlhf_summary(run, reward_source, policy)


def run_trl(work: Path, policy: Path) -> dict[str, Any]:
    """TRL's GRPOTrainer against both services (started here), and its line."""
    from policy_trainer.trl_local import run_trl_grpo

    out = work / "trl"
    out.mkdir(parents=True, exist_ok=True)
    with services(out, {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}) as (reward_url, _, answer_log):
        done = run_trl_grpo(policy, prompt_rows(PROMPTS_PER_STEP), reward_url, out / "ckpt", steps=STEPS)
        answers = [json.loads(line) for line in answer_log.read_text(encoding="utf-8").splitlines()]
    per_step = PROMPTS_PER_STEP * SAMPLES
    answered = [_mean([float(a["reward"]) for a in answers[i * per_step : (i + 1) * per_step]]) for i in range(STEPS)]
    loads, changed = weights_changed(policy, Path(done["checkpoint"])) if done["checkpoint"] else (False, False)
    summary: dict[str, Any] = {
        "framework": "trl",
        "trl_version": done["trl_version"],
        "reward_source": "/v1/rewards",
        "steps": done["steps"],
        "fallbacks": done["fallbacks"],
        "reward_logged": done["reward_means"],
        "reward_answered": answered,
        "answers": len(answers),
        "checkpoint_loads": loads,
        "weights_changed": changed,
        "seconds": done["seconds"],
    }
    failures = []
    if done["steps"] != STEPS or len(done["reward_means"]) != STEPS:
        failures.append(f"{done['steps']} steps, {len(done['reward_means'])} logged, not {STEPS}")
    if done["fallbacks"]:
        failures.append(f"{done['fallbacks']} completions got the fallback reward")
    if len(answers) != STEPS * per_step:
        failures.append(f"{len(answers)} answers in the service's log, not one per completion")
    pairs = zip(done["reward_means"], answered, strict=False)
    if any(not abs(a - b) < 1e-5 for a, b in pairs):
        failures.append(f"logged rewards {done['reward_means']} != answered {answered}")
    if not (loads and changed):
        failures.append(f"checkpoint loads: {loads}, weights changed: {changed}")
    summary["failures"] = failures
    return summary


def main(work: Path) -> int:
    """Every run, one JSON line each on stdout as it ends (whatever the libraries print goes to stderr);
    1 when any check failed."""
    with contextlib.redirect_stdout(sys.stderr):
        policy, prompts = prepare(work)
    failed = False
    for run in (
        lambda: run_openrlhf(work, policy, prompts, "remote"),
        lambda: run_openrlhf(work, policy, prompts, "agent"),
        lambda: run_trl(work, policy),
    ):
        with contextlib.redirect_stdout(sys.stderr):
            line = run()
        print(json.dumps(line), flush=True)
        failed = failed or bool(line["failures"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/grpo-smoke").resolve()))
