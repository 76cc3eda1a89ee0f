"""The GRPO run as an OpenRLHF command line and a Ray job: build it, submit it, follow it.

:func:`build_command` turns :class:`~policy_trainer.settings.TrainerSettings` into
``python -m openrlhf.cli.train_ppo_ray`` and its dotted flags (OpenRLHF >= 0.10); :func:`submit` sends it
to a Ray cluster's job server (the dashboard address, e.g. ``http://head:8265``) with the environment its
processes need; :func:`wait_for_job` follows the job to its end. Ray is imported inside the functions
that talk to it, so building and printing a command needs neither Ray nor OpenRLHF.

>>> flags = build_command(TrainerSettings(actor_model="/models/policy", prompt_dataset="prompts.jsonl"))
>>> flags[:3], flags[flags.index("--reward.remote_url") + 1]
(['python', '-m', 'openrlhf.cli.train_ppo_ray'], 'http://127.0.0.1:8000/openrlhf/reward')
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import policy_trainer
from policy_trainer.openrlhf_cli import TRAINER_MODULE
from policy_trainer.settings import JobSettings, TrainerSettings

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

#: The reward service's route for OpenRLHF's remote reward protocol (it gathers each GRPO group back together).
REWARD_ROUTE = "/openrlhf/reward"
#: The environment variables that carry the services' URLs to the agent executor in the Ray workers.
REWARD_URL_VAR = "TRAINER_REWARD_URL"
SECRET_FLAGS = frozenset({"--logger.wandb.key"})
PREFLIGHT_MODULE = "policy_trainer.preflight"

Flag = tuple[str, str | None]  # a flag and its value; None for a switch


class JobError(Exception):
    """The Ray job server could not be reached, refused the job, or the job did not end in time."""


@dataclass(frozen=True)
class JobOutcome:
    """How a Ray job ended.

    Attributes:
        job_id: the submission id.
        status: ``SUCCEEDED``, ``FAILED`` or ``STOPPED``.
        message: Ray's account of the end (for a failure, the exit code and the log's last lines).
    """

    job_id: str
    status: str
    message: str

    @property
    def succeeded(self) -> bool:
        """Whether the job's entrypoint exited with 0."""
        return self.status == "SUCCEEDED"


def agent_executor_path() -> Path:
    """The file OpenRLHF loads the agent executor from (``policy_trainer/openrlhf_agent.py``)."""
    return Path(policy_trainer.__file__).resolve().parent / "openrlhf_agent.py"


def _recipe_flags(config: TrainerSettings) -> list[Flag]:
    """Model, data, GRPO recipe and outputs."""
    flags: list[Flag] = [
        ("--actor.model_name_or_path", config.actor_model),
        ("--data.prompt_dataset", config.prompt_dataset),
        ("--data.input_key", config.input_key),
        ("--data.label_key", config.label_key),
        ("--data.max_len", str(config.max_len)),
        ("--rollout.max_new_tokens", str(config.max_new_tokens)),
        ("--rollout.temperature", str(config.temperature)),
        ("--algo.advantage.estimator", config.advantage_estimator),
        ("--rollout.n_samples_per_prompt", str(config.n_samples_per_prompt)),
        ("--rollout.batch_size", str(config.rollout_batch_size)),
        ("--train.batch_size", str(config.train_batch_size)),
        ("--rollout.micro_batch_size", str(config.rollout_micro_batch_size)),
        ("--train.micro_batch_size", str(config.train_micro_batch_size)),
        ("--actor.adam.lr", str(config.actor_lr)),
        ("--algo.kl.estimator", config.kl_estimator),
        ("--algo.kl.init_coef", str(config.kl_coef)),
        ("--train.num_episodes", str(config.num_episodes)),
        ("--train.seed", str(config.seed)),
        ("--ckpt.output_dir", config.output_dir),
        ("--ckpt.save_steps", str(config.save_steps)),
    ]
    if config.apply_chat_template:
        flags.append(("--data.apply_chat_template", None))
    if config.kl_loss:
        flags.append(("--algo.kl.use_loss", None))
    return flags


def _cluster_flags(config: TrainerSettings) -> list[Flag]:
    """Nodes, GPUs, vLLM engines and DeepSpeed."""
    flags: list[Flag] = []
    for role in ("actor", "ref"):
        flags += [
            (f"--{role}.num_nodes", str(config.num_nodes)),
            (f"--{role}.num_gpus_per_node", str(config.gpus_per_node)),
        ]
    flags += [
        ("--vllm.num_engines", str(config.vllm_num_engines)),
        ("--vllm.tensor_parallel_size", str(config.vllm_tensor_parallel_size)),
        ("--vllm.gpu_memory_utilization", str(config.vllm_gpu_memory_utilization)),
        ("--ds.zero_stage", str(config.zero_stage)),
    ]
    if config.colocate_all:
        flags += [("--train.colocate_all", None), ("--vllm.enable_sleep", None), ("--ds.enable_sleep", None)]
    if config.gradient_checkpointing:
        flags.append(("--actor.gradient_checkpointing_enable", None))
    return flags


def _logging_flags(config: TrainerSettings) -> list[Flag]:
    flags: list[Flag] = []
    if config.tensorboard_dir:
        flags.append(("--logger.tensorboard_dir", config.tensorboard_dir))
    if config.wandb_api_key is not None:
        flags += [("--logger.wandb.key", config.wandb_api_key.get_secret_value())]
        flags += [("--logger.wandb.project", config.wandb_project)]
        if config.wandb_run_name:
            flags.append(("--logger.wandb.run_name", config.wandb_run_name))
    return flags


def reward_flags(config: TrainerSettings) -> list[str]:
    """The reward source: the reward service's cohort endpoint, or the agent executor's file."""
    if config.reward_source == "agent":
        return ["--train.agent_func_path", config.agent_func_path or str(agent_executor_path())]
    return ["--reward.remote_url", f"{config.reward_url}{REWARD_ROUTE}"]


def openrlhf_flags(config: TrainerSettings) -> list[str]:
    """OpenRLHF's flags for the run, ``extra_args`` last."""
    argv: list[str] = []
    for flag, value in _recipe_flags(config) + _cluster_flags(config) + _logging_flags(config):
        argv += [flag] if value is None else [flag, value]
    return argv + reward_flags(config) + list(config.extra_args)


def build_command(config: TrainerSettings) -> list[str]:
    """``[python, "-m", "openrlhf.cli.train_ppo_ray", ...flags]`` for the run."""
    return [config.python, "-m", TRAINER_MODULE, *openrlhf_flags(config)]


def preflight_command(config: JobSettings, timeout_s: float = 60.0) -> list[str]:
    """The preflight job (:mod:`policy_trainer.preflight`) against the run's services."""
    return [
        config.python,
        "-m",
        PREFLIGHT_MODULE,
        "--reward-url",
        config.reward_url,
        "--embedder-url",
        config.embedder_url,
        "--timeout",
        str(timeout_s),
    ]


def runtime_env(config: TrainerSettings) -> dict[str, Any]:
    """The job's Ray runtime environment: ``job_env``, and the reward service's URL for the agent executor
    (which scores through ``/v1/rewards``; the reward service calls its own embedder)."""
    env_vars = dict(config.job_env)
    if config.reward_source == "agent":
        env_vars |= {REWARD_URL_VAR: config.reward_url}
    return {"env_vars": env_vars}


def redact(command: Sequence[str]) -> list[str]:
    """The command with the values of secret flags (the W&B key) masked, for printing.

    >>> redact(["python", "--logger.wandb.key", "abc", "--x", "1"])
    ['python', '--logger.wandb.key', '***', '--x', '1']
    """
    shown = list(command)
    for i, token in enumerate(shown[:-1]):
        if token in SECRET_FLAGS:
            shown[i + 1] = "***"
    return shown


def format_command(command: Sequence[str]) -> str:
    """The command for a shell, one flag (and its values) per line.

    >>> print(format_command(["python", "-m", "m", "--a", "1 2", "--b"]))
    python -m m \\
      --a '1 2' \\
      --b
    """
    lines: list[list[str]] = [[]]
    for token in command:
        if token.startswith("--"):
            lines.append([])
        lines[-1].append(shlex.quote(token))
    return " \\\n  ".join(" ".join(line) for line in lines if line)


def _client(address: str) -> JobSubmissionClient:
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise JobError(f"no Ray job server at {address}: {exc}") from exc


def submit_entrypoint(
    address: str,
    command: Sequence[str],
    env: dict[str, Any],
    submission_id: str | None = None,
    entrypoint_num_gpus: int | None = None,
) -> str:
    """Submit a command as a Ray job and return its submission id.

    ``entrypoint_num_gpus``: GPUs Ray reserves for the entrypoint itself (it then runs on a node that has
    them, with ``CUDA_VISIBLE_DEVICES`` set), for an entrypoint that trains, such as DeepSpeed's launcher.

    Raises:
        JobError: the job server is not reachable or refused the job.
    """
    client = _client(address)
    try:
        return client.submit_job(
            entrypoint=shlex.join(command),
            runtime_env=env,
            submission_id=submission_id,
            entrypoint_num_gpus=entrypoint_num_gpus,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise JobError(f"the Ray job server at {address} refused the job: {exc}") from exc


def submit(config: TrainerSettings, address: str, submission_id: str | None = None) -> str:
    """Submit the GRPO run to the Ray cluster whose job server (dashboard) is at ``address``.

    Args:
        config: the run.
        address: the dashboard's HTTP address, e.g. ``http://head:8265``.
        submission_id: the job's id; Ray makes one when None.

    Returns:
        The job's submission id.

    Raises:
        JobError: the job server is not reachable or refused the job.
    """
    return submit_entrypoint(address, build_command(config), runtime_env(config), submission_id)


async def _follow_logs(client: JobSubmissionClient, job_id: str, on_log: Callable[[str], None]) -> None:
    async for chunk in client.tail_job_logs(job_id):
        on_log(chunk)


def wait_for_job(
    address: str,
    job_id: str,
    timeout_s: float | None = None,
    on_log: Callable[[str], None] | None = None,
    poll_s: float = 1.0,
) -> JobOutcome:
    """Wait until a job ends, streaming its log to ``on_log`` as it is written.

    Args:
        address: the job server.
        job_id: the submission id.
        timeout_s: how long to wait; None: until the job ends.
        on_log: called with each new chunk of the job's output (stdout and stderr).
        poll_s: pause between status checks.

    Returns:
        How the job ended.

    Raises:
        JobError: the job server could not be reached, or the job had not ended in ``timeout_s`` (it keeps
            running: ``ray job stop`` ends it).
    """
    client = _client(address)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        if on_log is not None:  # the stream ends with the job
            asyncio.run(asyncio.wait_for(_follow_logs(client, job_id, on_log), timeout_s))
        while not (status := client.get_job_status(job_id)).is_terminal():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError
            time.sleep(poll_s)
        info = client.get_job_info(job_id)
    except TimeoutError:
        raise JobError(f"job {job_id} had not ended after {timeout_s} s; it keeps running") from None
    except (ConnectionError, RuntimeError) as exc:
        raise JobError(f"lost the Ray job server at {address} while following {job_id}: {exc}") from exc
    return JobOutcome(job_id, status.value, info.message or "")
