"""Typer commands of the trainer: ``train`` (the GRPO run as a Ray job), ``preflight`` and ``data openrlhf-prompts``.

Registered in :mod:`unifireward.cli`. The options override a ``--config`` file, which overrides ``TRAINER_*``
variables, which override the defaults of :mod:`policy_trainer.settings`; options left out change
nothing, so the defaults live in one place. Ray is imported only to submit.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.syntax import Syntax

from policy_trainer.launcher import (
    JobError,
    JobOutcome,
    build_command,
    format_command,
    preflight_command,
    redact,
    submit,
    submit_entrypoint,
    wait_for_job,
)
from policy_trainer.openrlhf_cli import OpenRLHFArgsError, OpenRLHFError, OpenRLHFNotInstalledError, run_openrlhf_parser
from policy_trainer.settings import JobSettings, RewardSource, SettingsError, TrainerSettings, load_settings

S = TypeVar("S", bound=JobSettings)
stdout, stderr = Console(soft_wrap=True, highlight=False), Console(stderr=True, soft_wrap=True, highlight=False)


def _about(field: str) -> str:
    """The option's help: the setting's description, so the two cannot disagree."""
    return TrainerSettings.model_fields[field].description or field


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="JSON or YAML file of settings, by field name (policy_trainer/settings.py)."),
]
AddressOption = Annotated[str | None, typer.Option("--address", help=_about("ray_address"))]
RewardUrlOption = Annotated[str | None, typer.Option(help=_about("reward_url"))]
EmbedderUrlOption = Annotated[str | None, typer.Option(help=_about("embedder_url"))]
PythonOption = Annotated[str | None, typer.Option(help=_about("python"))]
PreflightTimeout = Annotated[float, typer.Option(help="Seconds the preflight job may take.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    stderr.print(f"[bold red]error:[/] {message}", markup=True)
    return typer.Exit(code)


def _load(cls: type[S], config: Path | None, overrides: dict[str, Any]) -> S:
    try:
        return load_settings(cls, config, overrides)
    except SettingsError as exc:
        raise _fail(str(exc), 2) from None


def _check(run: TrainerSettings, command: list[str]) -> None:
    """OpenRLHF's own parser and checks on the command, when OpenRLHF is installed here."""
    try:
        parsed = run_openrlhf_parser(command[3:])
    except OpenRLHFNotInstalledError as exc:
        stderr.print(f"not checked: {exc}")
        return
    except OpenRLHFArgsError as exc:
        raise _fail(str(exc)) from None
    except OpenRLHFError as exc:
        raise _fail(f"could not check the command: {exc}") from None
    for note in parsed.notes:
        stderr.print(f"OpenRLHF: {note}")
    if run.reward_source == "agent" and not Path(parsed.args.train.agent_func_path).is_file():
        stderr.print(f"note: {parsed.args.train.agent_func_path} does not exist here; it must on the GPU nodes")


def _show(command: list[str]) -> None:
    text = format_command(redact(command))
    if stdout.is_terminal:
        stdout.print(Syntax(text, "bash", word_wrap=False, background_color="default"))
    else:  # plain, so the output can be pasted into a shell or read by a script
        stdout.print(text, markup=False)


def _follow(address: str, job_id: str, timeout_s: float | None, log: list[str] | None = None) -> JobOutcome:
    """Stream the job's log to stdout (and into ``log``) until it ends."""

    def show(chunk: str) -> None:
        stdout.out(chunk, end="")
        if log is not None:
            log.append(chunk)

    logging.getLogger("ray.dashboard.modules.job.sdk").setLevel(logging.WARNING)  # "WebSocket closed" at the end
    try:
        return wait_for_job(address, job_id, timeout_s, on_log=show)
    except KeyboardInterrupt:
        hint = f"ray job stop --address {address} {job_id}"
        raise _fail(f"stopped following; job {job_id} keeps running ({hint})", 130) from None


def _run_preflight(job: JobSettings, timeout_s: float) -> None:
    from policy_trainer.preflight import failures, find_report

    stderr.print(f"preflight: checking from every Ray node that {job.reward_url} and {job.embedder_url} answer")
    log: list[str] = []
    try:
        job_id = submit_entrypoint(job.ray_address, preflight_command(job, timeout_s), {"env_vars": dict(job.job_env)})
        outcome = _follow(job.ray_address, job_id, timeout_s + 120, log)
    except JobError as exc:
        raise _fail(str(exc)) from None
    if not outcome.succeeded:
        report = find_report("".join(log))
        found = failures(report) if report else [outcome.message.strip()]
        raise _fail(f"preflight job {job_id} {outcome.status}:\n  " + "\n  ".join(found))
    stderr.print(f"preflight: job {job_id} succeeded")


def train(
    config: ConfigOption = None,
    actor_model: Annotated[str | None, typer.Option(help=_about("actor_model"))] = None,
    prompt_dataset: Annotated[str | None, typer.Option(help=_about("prompt_dataset"))] = None,
    reward_source: Annotated[RewardSource | None, typer.Option(help=_about("reward_source"))] = None,
    reward_url: RewardUrlOption = None,
    embedder_url: EmbedderUrlOption = None,
    n_samples_per_prompt: Annotated[int | None, typer.Option(help=_about("n_samples_per_prompt"))] = None,
    rollout_batch_size: Annotated[int | None, typer.Option(help=_about("rollout_batch_size"))] = None,
    train_batch_size: Annotated[int | None, typer.Option(help=_about("train_batch_size"))] = None,
    actor_lr: Annotated[float | None, typer.Option(help=_about("actor_lr"))] = None,
    kl_coef: Annotated[float | None, typer.Option(help=_about("kl_coef"))] = None,
    temperature: Annotated[float | None, typer.Option(help=_about("temperature"))] = None,
    num_nodes: Annotated[int | None, typer.Option(help=_about("num_nodes"))] = None,
    gpus_per_node: Annotated[int | None, typer.Option(help=_about("gpus_per_node"))] = None,
    vllm_num_engines: Annotated[int | None, typer.Option(help=_about("vllm_num_engines"))] = None,
    vllm_tensor_parallel_size: Annotated[int | None, typer.Option(help=_about("vllm_tensor_parallel_size"))] = None,
    output_dir: Annotated[str | None, typer.Option(help=_about("output_dir"))] = None,
    python: PythonOption = None,
    address: AddressOption = None,
    dry_run: Annotated[bool, typer.Option(help="Print the command and submit nothing.")] = False,
    check: Annotated[bool, typer.Option(help="Check the command with OpenRLHF's own parser (if installed).")] = True,
    preflight: Annotated[bool, typer.Option(help="First check from every Ray node that both services answer.")] = False,
    preflight_timeout: PreflightTimeout = 120.0,
    wait: Annotated[bool, typer.Option(help="Follow the job's log until it ends; exit 1 unless it succeeded.")] = True,
    timeout: Annotated[float | None, typer.Option(help="Seconds to follow the job (it keeps running after).")] = None,
    job_id: Annotated[str | None, typer.Option(help="The job's submission id; Ray makes one if not given.")] = None,
    local: Annotated[
        bool,
        typer.Option(
            help="Run here on the CPU instead (docs/training.md): both services, a Ray head and OpenRLHF's "
            "trainer on 127.0.0.1, stopped at the end; each step's metrics printed as a JSON line."
        ),
    ] = False,
    steps: Annotated[int, typer.Option(min=1, help="With --local: GRPO steps to run.")] = 2,
    work_dir: Annotated[
        Path, typer.Option(help="With --local: prompts, logs, answer log and checkpoint go here.")
    ] = Path("runs/local"),
    openrlhf_args: Annotated[
        list[str] | None, typer.Argument(help="Further OpenRLHF flags, after `--` (added to extra_args).")
    ] = None,
) -> None:
    """Run GRPO on a Ray cluster: OpenRLHF's trainer as a Ray job, rewarded by the reward service."""
    overrides = {k: v for k, v in locals().items() if k in TrainerSettings.model_fields}
    overrides["ray_address"] = address
    run = _load(TrainerSettings, config, overrides)
    if openrlhf_args:
        run = run.model_copy(update={"extra_args": [*run.extra_args, *openrlhf_args]})
    if local:
        _train_locally(run, steps, work_dir, dry_run)
        return
    command = build_command(run)
    if check:
        _check(run, command)
    _show(command)
    if dry_run:
        return
    if preflight:
        _run_preflight(run, preflight_timeout)
    try:
        submitted = submit(run, run.ray_address, job_id)
        stderr.print(f"submitted job {submitted} to {run.ray_address}")
        if not wait:
            stderr.print(f"follow it with: ray job logs --follow --address {run.ray_address} {submitted}")
            return
        outcome = _follow(run.ray_address, submitted, timeout)
    except JobError as exc:
        raise _fail(str(exc)) from None
    if not outcome.succeeded:
        raise _fail(f"job {submitted} {outcome.status}: {outcome.message.strip()}")


def _train_locally(run: TrainerSettings, steps: int, work_dir: Path, dry_run: bool) -> None:
    """``train --local``: the run on this machine's CPU, each step's metrics a JSON line on stdout."""
    from policy_trainer.cpu.adaptations import CpuModeError
    from policy_trainer.local_run import LocalRunError, local_command, run_local

    try:
        if dry_run:
            _show(local_command(run))
            return
        done = run_local(run, steps, work_dir, on_step=lambda metrics: typer.echo(json.dumps(metrics)))
    except (CpuModeError, LocalRunError, OSError) as exc:
        raise _fail(str(exc)) from None
    if len(done.steps) != steps:
        raise _fail(f"OpenRLHF logged {len(done.steps)} steps, not {steps}; its log: {done.log_path}")
    summary = {
        "steps": len(done.steps),
        "answers": len(done.answers),
        "output_dir": str(done.output_dir),
        "wall_s": round(done.wall_s, 1),
        "peak_rss_gib": round(done.peak_rss_bytes / 2**30, 2),
        "log": str(done.log_path),
    }
    stderr.print(json.dumps(summary))


def preflight(
    config: ConfigOption = None,
    reward_url: RewardUrlOption = None,
    embedder_url: EmbedderUrlOption = None,
    python: PythonOption = None,
    address: AddressOption = None,
    timeout: PreflightTimeout = 120.0,
) -> None:
    """Check from every node of a Ray cluster that the reward service and the embedder answer (a Ray job)."""
    overrides = {"reward_url": reward_url, "embedder_url": embedder_url, "python": python, "ray_address": address}
    job = _load(JobSettings, config, overrides)
    _run_preflight(job, timeout)


def openrlhf_prompts(
    data_dir: Annotated[Path, typer.Option(help="Directory with esconv_{train,valid,test}.jsonl.")] = Path(
        "../shared/data/esconv"
    ),
    split: Annotated[str, typer.Option(help="ESConv split: train for training, valid for evaluation.")] = "train",
    out: Annotated[Path, typer.Option(help="Output JSON Lines file.")] = Path("data/openrlhf/train.jsonl"),
    group_size: Annotated[
        int, typer.Option(min=1, help="Replies per prompt: the run's --rollout.n_samples_per_prompt.")
    ] = 4,
    rounds_per_dialogue: Annotated[int, typer.Option(min=1, help="Ns: rounds drawn per dialogue (COMPEER eq. 1).")] = 4,
    schema: Annotated[str, typer.Option(help="Reasoning schema the policy is taught: compeer or care.")] = "compeer",
    seed: Annotated[int, typer.Option(help="Random seed; the output is a function of it.")] = 0,
) -> None:
    """Write OpenRLHF prompt rows (chat input + JSON label) for GRPO from an ESConv split."""
    from policy_trainer.prompts import build_rows
    from services.data.cer_data import write_jsonl
    from services.data.esconv import SPLITS, load_split, split_path

    if split not in SPLITS:
        raise typer.BadParameter(f"one of {', '.join(SPLITS)}", param_hint="--split")
    if schema not in ("compeer", "care"):
        raise typer.BadParameter("compeer or care", param_hint="--schema")
    schema_name: Literal["compeer", "care"] = "compeer" if schema == "compeer" else "care"
    dialogues = load_split(split_path(data_dir, split))
    rows = build_rows(
        dialogues,
        split,
        group_size=group_size,
        rounds_per_dialogue=rounds_per_dialogue,
        seed=seed,
        schema_name=schema_name,
    )
    count = write_jsonl(rows, out)
    typer.echo(json.dumps({"split": split, "dialogues": len(dialogues), "rows": count, "out": str(out)}))
