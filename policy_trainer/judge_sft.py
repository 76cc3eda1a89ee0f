"""Supervised fine-tuning of the generative judge with OpenRLHF 0.11.2's ``openrlhf.cli.train_sft``.

``unifireward train-judge --kind generative`` trains the judge the ``vllm`` and ``openai`` backends serve
on the conversations ``unifireward data judge-sft`` writes (``<data_dir>/openrlhf/{train,valid}.jsonl``,
OpenRLHF's multi-turn format: ``--data.input_key messages --data.apply_chat_template --data.multiturn``,
so the loss is on the judge's answers only; OpenRLHF's ``SFTDataset`` masks the system prompt and the
questions).

* On GPUs, the run is a Ray job like ``unifireward train``: its entrypoint is DeepSpeed's launcher,
  ``deepspeed --module openrlhf.cli.train_sft ...`` (how OpenRLHF's own example scripts start it), and
  the job reserves ``gpus`` GPUs for the entrypoint (``entrypoint_num_gpus``), so Ray runs it on a node
  that has them and DeepSpeed starts one rank per GPU Ray gave it (``CUDA_VISIBLE_DEVICES``).
* On the CPU (``--local``), the same flags go to :mod:`policy_trainer.cpu.sft_driver` (one process,
  DeepSpeed on gloo, the CPU adaptations of :mod:`policy_trainer.cpu.adaptations`), submitted as a Ray
  job to a Ray head started here on 127.0.0.1 and stopped by pid at the end: the same submission and log
  path as on a cluster, for about 15 s of start-up.

The defaults are the paper's recipe for a 7B instruct judge (learning rate 1e-5, global batch 64) on one
8-GPU node with ZeRO-3 (``docs/judge-training.md`` has the sizing). Nothing here imports Ray, torch or
OpenRLHF until it submits, runs or checks a command.

>>> command = build_sft_command(JudgeTrainingSettings())
>>> command[:3], command[command.index("--adam.lr") + 1], command[command.index("--train.batch_size") + 1]
(['deepspeed', '--module', 'openrlhf.cli.train_sft'], '1e-05', '64')
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from policy_trainer.launcher import JobError, JobOutcome, redact, submit_entrypoint, wait_for_job
from policy_trainer.openrlhf_cli import ParsedArgs, run_openrlhf_parser

#: The module DeepSpeed's launcher (GPU) or the CPU driver runs.
SFT_MODULE = "openrlhf.cli.train_sft"
#: The CPU mode's driver (:mod:`policy_trainer.cpu.sft_driver`).
SFT_DRIVER_MODULE = "policy_trainer.cpu.sft_driver"
#: The OpenRLHF release the flags (and the CPU adaptations) are written for.
OPENRLHF_VERSION = "0.11.2"
#: What OpenRLHF's SFT trainer shows in its progress bar at each optimizer step.
LOSS_FIELD = re.compile(r"gpt_loss=([0-9.eE+-]+)")
#: The multi-turn chat format of ``unifireward data judge-sft``'s OpenRLHF rows.
DATA_FLAGS = ["--data.input_key", "messages", "--data.apply_chat_template", "--data.multiturn"]

Attention = Literal["flash_attention_2", "flash_attention_3", "sdpa", "eager"]


class JudgeTrainingSettings(BaseSettings):
    """One SFT run of the generative judge (``JUDGE_SFT_*`` variables, or the command's options)."""

    model_config = SettingsConfigDict(env_prefix="JUDGE_SFT_", extra="forbid", validate_default=True)

    # Model, data, output.
    model: str = Field(
        "Qwen/Qwen2.5-7B-Instruct",
        description="The base model: a Hugging Face model directory on the training node, or a hub name "
        "(--model.model_name_or_path). The paper fine-tunes a 7B instruct model.",
    )
    data_dir: str = Field(
        "data/judge-sft",
        description="unifireward data judge-sft's output: <data_dir>/openrlhf/train.jsonl is trained on, "
        "valid.jsonl evaluated (--data.dataset, --eval.dataset).",
    )
    output_dir: str = Field(
        "checkpoints/judge-sft",
        description="Where the fine-tuned judge is saved, Hugging Face format (--ckpt.output_dir).",
    )
    # The recipe.
    learning_rate: float = Field(1e-5, gt=0, description="Peak AdamW learning rate (--adam.lr); the paper's 1e-5.")
    train_batch_size: int = Field(
        64, ge=1, description="Global batch: conversations per optimizer step (--train.batch_size); the paper's 64."
    )
    micro_batch_size: int = Field(
        1, ge=1, description="Conversations per forward pass and GPU (--train.micro_batch_size)."
    )
    epochs: int = Field(2, ge=1, description="Passes over the training conversations (--train.max_epochs).")
    max_len: int = Field(
        4096,
        ge=64,
        description="Longest conversation in tokens (--data.max_len); OpenRLHF truncates longer ones and drops "
        "one whose first question alone is longer.",
    )
    max_samples: int | None = Field(
        None, ge=1, description="Train on the first N conversations only (--data.max_samples); all when unset."
    )
    warmup_ratio: float = Field(
        0.03, ge=0, le=1, description="Share of the steps the learning rate warms up (--lr_warmup_ratio)."
    )
    seed: int = Field(0, description="Seed of the data order and initialisation (--train.seed).")
    evaluate: bool = Field(True, description="Report the loss on <data_dir>/openrlhf/valid.jsonl after each epoch.")
    # DeepSpeed and the GPUs.
    gpus: int = Field(8, ge=1, description="GPUs of the one node the job runs on; DeepSpeed starts a rank per GPU.")
    zero_stage: int = Field(3, ge=0, le=3, description="DeepSpeed ZeRO stage (--ds.zero_stage).")
    param_dtype: Literal["bf16", "fp16"] = Field("bf16", description="Training dtype (--ds.param_dtype).")
    gradient_checkpointing: bool = Field(
        True, description="Recompute activations in the backward pass (--model.gradient_checkpointing_enable)."
    )
    adam_offload: bool = Field(False, description="Keep the optimizer states in CPU memory (--ds.adam_offload).")
    attn_implementation: Attention = Field(
        "flash_attention_2", description="Attention kernel (--ds.attn_implementation); the CPU mode uses sdpa."
    )
    # Where the job goes.
    ray_address: str = Field(
        "http://127.0.0.1:8265", description="The Ray cluster's job server: the dashboard's address on the head node."
    )
    deepspeed: str = Field("deepspeed", description="DeepSpeed's launcher on the training node.")
    job_env: dict[str, str] = Field(
        default_factory=dict, description="More environment variables for the job's processes (JSON object)."
    )
    # Logging.
    tensorboard_dir: str | None = Field(None, description="TensorBoard log directory (--logger.tensorboard_dir).")
    wandb_api_key: SecretStr | None = Field(None, description="Weights & Biases key; logs there when set.")
    wandb_project: str = Field("unifireward-judge-sft", description="Weights & Biases project.")
    extra_args: list[str] = Field(default_factory=list, description="More OpenRLHF flags, last (they win).")

    @field_validator("ray_address")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, not {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _batches_fit(self) -> JudgeTrainingSettings:
        if self.train_batch_size % self.micro_batch_size:
            raise ValueError(
                f"train_batch_size {self.train_batch_size} must be a multiple of "
                f"micro_batch_size {self.micro_batch_size}"
            )
        return self

    def data_file(self, split: str) -> str:
        """The OpenRLHF rows of a split: ``<data_dir>/openrlhf/<split>.jsonl``."""
        return str(Path(self.data_dir) / "openrlhf" / f"{split}.jsonl")


def sft_flags(config: JudgeTrainingSettings) -> list[str]:
    """OpenRLHF ``train_sft``'s flags for the run, ``extra_args`` last."""
    output = Path(config.output_dir)
    flags = [
        "--model.model_name_or_path",
        config.model,
        "--data.dataset",
        config.data_file("train"),
        *DATA_FLAGS,
        "--data.max_len",
        str(config.max_len),
        "--train.batch_size",
        str(config.train_batch_size),
        "--train.micro_batch_size",
        str(config.micro_batch_size),
        "--train.max_epochs",
        str(config.epochs),
        "--train.seed",
        str(config.seed),
        "--adam.lr",
        str(config.learning_rate),
        "--lr_warmup_ratio",
        str(config.warmup_ratio),
        "--ds.zero_stage",
        str(config.zero_stage),
        "--ds.param_dtype",
        config.param_dtype,
        "--ds.attn_implementation",
        config.attn_implementation,
        "--ckpt.output_dir",
        str(output),
        "--ckpt.path",
        str(output / "checkpoints"),  # OpenRLHF's default is ./ckpt, relative to wherever the job runs
        "--logger.logging_steps",
        "1",
    ]
    if config.max_samples is not None:
        flags += ["--data.max_samples", str(config.max_samples)]
    if config.evaluate:
        flags += ["--eval.dataset", config.data_file("valid")]
    if config.gradient_checkpointing:
        flags.append("--model.gradient_checkpointing_enable")
    if config.adam_offload:
        flags.append("--ds.adam_offload")
    if config.tensorboard_dir:
        flags += ["--logger.tensorboard_dir", config.tensorboard_dir]
    if config.wandb_api_key is not None:
        flags += ["--logger.wandb.key", config.wandb_api_key.get_secret_value()]
        flags += ["--logger.wandb.project", config.wandb_project]
    return flags + list(config.extra_args)


def build_sft_command(config: JudgeTrainingSettings) -> list[str]:
    """The GPU job's entrypoint: ``deepspeed --module openrlhf.cli.train_sft ...flags``.

    DeepSpeed's launcher is given no ``--num_gpus``: it then starts one rank per GPU of
    ``CUDA_VISIBLE_DEVICES``, which Ray sets to the GPUs it reserved for the job's entrypoint.
    """
    return [config.deepspeed, "--module", SFT_MODULE, *sft_flags(config)]


def local_settings(config: JudgeTrainingSettings) -> JudgeTrainingSettings:
    """The run on one CPU process: sdpa attention (flash-attn is CUDA's), ZeRO-2 at most (ZeRO-3 partitions
    the parameters over ranks, which one rank cannot use), one rank."""
    attention = config.attn_implementation if config.attn_implementation in ("sdpa", "eager") else "sdpa"
    return config.model_copy(
        update={"attn_implementation": attention, "zero_stage": min(config.zero_stage, 2), "gpus": 1}
    )


def local_sft_command(config: JudgeTrainingSettings, python: str = sys.executable) -> list[str]:
    """The CPU mode's entrypoint: :mod:`policy_trainer.cpu.sft_driver` with the run's flags."""
    return [python, "-m", SFT_DRIVER_MODULE, *sft_flags(local_settings(config))]


def show_command(command: Sequence[str]) -> str:
    """The command for a shell, secrets masked (``launcher.redact``), one flag per line."""
    from policy_trainer.launcher import format_command

    return format_command(redact(command))


def openrlhf_flags_of(command: Sequence[str]) -> list[str]:
    """The OpenRLHF flags of a command of :func:`build_sft_command` or :func:`local_sft_command`.

    >>> openrlhf_flags_of(["deepspeed", "--module", SFT_MODULE, "--adam.lr", "1e-05"])
    ['--adam.lr', '1e-05']
    """
    command = list(command)
    for module in (SFT_MODULE, SFT_DRIVER_MODULE):
        if module in command:
            return command[command.index(module) + 1 :]
    raise ValueError(f"not an SFT command: it runs neither {SFT_MODULE} nor {SFT_DRIVER_MODULE}")


def parse_sft_args(argv: Sequence[str]) -> ParsedArgs:
    """Read ``argv`` with OpenRLHF 0.11.2's own ``train_sft`` parser and checks, without training.

    ``openrlhf/cli/train_sft.py`` builds its parser and checks the flags inside its ``__main__`` block;
    the block is run as written with ``sys.argv`` set to ``argv`` and a ``train`` that keeps the parsed
    arguments (the reader of :mod:`policy_trainer.openrlhf_cli`, for the SFT module).

    Raises:
        OpenRLHFNotInstalledError: OpenRLHF is not installed.
        OpenRLHFArgsError: the parser or one of its checks refused ``argv``.
        OpenRLHFError: the block could not be run here.
    """
    return run_openrlhf_parser(argv, module=SFT_MODULE)


def submit_sft(config: JudgeTrainingSettings, submission_id: str | None = None) -> str:
    """Submit the GPU run to ``config.ray_address``, its entrypoint on a node with ``config.gpus`` GPUs.

    Raises:
        JobError: the job server is not reachable or refused the job.
    """
    return submit_entrypoint(
        config.ray_address,
        build_sft_command(config),
        {"env_vars": dict(config.job_env)},
        submission_id,
        entrypoint_num_gpus=config.gpus,
    )


class LocalSFTError(RuntimeError):
    """The CPU run could not start, or OpenRLHF's SFT trainer failed (with the end of its log)."""


@dataclass
class LocalSFTRun:
    """What a CPU run did.

    Attributes:
        output_dir: the fine-tuned judge (Hugging Face format).
        log_path: the job's whole output.
        job_id: the Ray job's submission id.
        losses: the training loss of each optimizer step, as OpenRLHF's progress bar showed it.
        wall_s: seconds from the Ray head's start to its stop.
    """

    output_dir: Path
    log_path: Path
    job_id: str
    losses: list[float] = field(default_factory=list)
    wall_s: float = 0.0


def check_openrlhf() -> str:
    """The installed OpenRLHF release, when it is the one the CPU mode is written for.

    Raises:
        LocalSFTError: OpenRLHF is missing or another release.
    """
    try:
        found = importlib.metadata.version("openrlhf")
    except importlib.metadata.PackageNotFoundError:
        raise LocalSFTError(f"openrlhf is not installed (the CPU mode needs openrlhf=={OPENRLHF_VERSION})") from None
    if found != OPENRLHF_VERSION:
        raise LocalSFTError(f"openrlhf {found} is installed; the CPU mode is written for {OPENRLHF_VERSION}")
    return found


def local_job_env(config: JudgeTrainingSettings, threads: int) -> dict[str, str]:
    """The CPU job's environment: loopback only, ``threads`` torch threads, nothing downloaded."""
    return {
        "MASTER_ADDR": "127.0.0.1",
        "GLOO_SOCKET_IFNAME": "lo",
        "OMP_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        **config.job_env,
    }


def losses_in(log: str) -> list[float]:
    """The loss of each optimizer step in OpenRLHF's SFT log (its progress bar's ``gpt_loss``).

    >>> losses_in("Train step of epoch 0: 50%|█ | 1/2 [00:01<00:01, gpt_loss=2.5, lr=0.001, grad_norm=3.1]")
    [2.5]
    """
    return [float(value) for value in LOSS_FIELD.findall(log)]


def run_local_sft(
    config: JudgeTrainingSettings,
    work_dir: Path,
    timeout_s: float = 1800.0,
    threads: int = 2,
    on_log: Callable[[str], None] | None = None,
) -> LocalSFTRun:
    """Run the SFT on this machine's CPU as a Ray job on a Ray head started here (127.0.0.1) and stopped after.

    Args:
        config: the run; a relative ``output_dir`` is taken under ``work_dir``.
        work_dir: where the job's log (``sft.log``) and, unless absolute, the checkpoint go.
        timeout_s: the longest the job may take (it is stopped after).
        threads: torch threads of the training process.
        on_log: called with each chunk of the job's output as it is written.

    Raises:
        LocalSFTError: another OpenRLHF release, a missing training file, or a job that failed or timed out.
    """
    from policy_trainer.ray_head import ray_head

    check_openrlhf()
    work_dir.mkdir(parents=True, exist_ok=True)
    work_dir = work_dir.resolve()
    output_dir = Path(config.output_dir)
    output_dir = output_dir if output_dir.is_absolute() else work_dir / output_dir
    config = config.model_copy(update={"output_dir": str(output_dir)})
    for split in ("train", "valid") if config.evaluate else ("train",):
        if not Path(config.data_file(split)).is_file():
            raise LocalSFTError(f"{config.data_file(split)} is missing (unifireward data judge-sft writes it)")
    log_path = work_dir / "sft.log"
    chunks: list[str] = []

    def keep(chunk: str) -> None:
        chunks.append(chunk)
        if on_log is not None:
            on_log(chunk)

    started = time.monotonic()
    with ray_head(num_cpus=threads, num_gpus=0) as head:
        try:
            job_id = submit_entrypoint(
                head.address, local_sft_command(config), {"env_vars": local_job_env(config, threads)}
            )
            outcome = _wait(head.address, job_id, timeout_s, keep)
        except JobError as exc:
            raise LocalSFTError(str(exc)) from None
        finally:
            log_path.write_text("".join(chunks), encoding="utf-8")
    log = "".join(chunks)
    if not outcome.succeeded:
        tail = "".join(log.splitlines(keepends=True)[-40:])
        raise LocalSFTError(f"job {job_id} {outcome.status}: {outcome.message.strip()}; the end of {log_path}:\n{tail}")
    if not (output_dir / "config.json").is_file():
        raise LocalSFTError(f"the job succeeded but wrote no model to {output_dir}; its log: {log_path}")
    return LocalSFTRun(output_dir, log_path, job_id, losses_in(log), time.monotonic() - started)


def _wait(address: str, job_id: str, timeout_s: float, on_log: Callable[[str], None]) -> JobOutcome:
    """Follow the job; stop it when it outlives ``timeout_s``."""
    try:
        return wait_for_job(address, job_id, timeout_s, on_log=on_log)
    except JobError:
        from ray.job_submission import JobSubmissionClient

        with contextlib.suppress(Exception):
            JobSubmissionClient(address).stop_job(job_id)
        raise
