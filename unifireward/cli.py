"""The ``unifireward`` command: user-facing commands of every component.

Heavy imports (torch, sentence-transformers, the service apps) happen inside the commands, so
``unifireward --help`` is instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from policy_trainer.cli import openrlhf_prompts, preflight, train
from reward_server.judge_model.cli import esconv_cer, eval_judge, hack_suite, train_judge
from reward_server.judge_model.sft_cli import judge_sft

app = typer.Typer(
    help="UnifiReward as a service: the reward service, its data and judge tools, GRPO training on Ray.",
    no_args_is_help=True,
)
data_app = typer.Typer(help="Build datasets from ESConv.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@app.command("serve")
def serve() -> None:
    """Start the reward service (settings from ``REWARD_*`` environment variables)."""
    from reward_server.__main__ import main

    main()


@app.command("serve-embedder")
def serve_embedder() -> None:
    """Start the embedding service (settings from ``EMBEDDER_*`` environment variables)."""
    from embedder.__main__ import main

    main()


@app.command("up")
def up(
    ready_timeout: float = typer.Option(300.0, help="Seconds each service may take to load."),
) -> None:
    """Start the embedder and the reward service together on this host; Ctrl-C stops both."""
    from services.serving.http import configure_logging
    from services.tools.supervisor import run

    configure_logging("info")
    raise typer.Exit(run(ready_timeout_s=ready_timeout))


@app.command("reward-proxy")
def reward_proxy(
    upstream: Annotated[str, typer.Option(help="The reward service's base URL, e.g. https://reward:8000.")],
    key_file: Annotated[Path, typer.Option(help="File whose first line, blank and # lines aside, is the bearer key.")],
    port: int = typer.Option(8010, help="Local port for OpenRLHF's --reward.remote_url."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind; keep loopback, the proxy adds the key."),
) -> None:
    """Forward OpenRLHF's reward requests to a reward service with API keys, adding the bearer key."""
    from policy_trainer.reward_proxy import run

    run(upstream, key_file, port, host)


JudgeKind = Literal["classifier", "generative"]


#: The options of each kind of train-judge; one given with the other kind is refused, not ignored.
CLASSIFIER_OPTIONS = ("data_dir", "out", "blind", "rounds_per_dialogue", "embedding_cache", "hack_points")
GENERATIVE_OPTIONS = (
    "model", "sft_data", "output_dir", "learning_rate", "train_batch_size", "micro_batch_size", "epochs", "max_len",
    "max_samples", "warmup_ratio", "gpus", "zero_stage", "gradient_checkpointing", "attn_implementation", "evaluate",
    "address", "local", "work_dir", "dry_run", "wait", "timeout", "openrlhf_args",
)  # fmt: skip


def _refuse_other_kind(ctx: typer.Context, kind: str) -> None:
    """A typer.BadParameter naming the options given on the command line that the other kind takes."""
    foreign = GENERATIVE_OPTIONS if kind == "classifier" else CLASSIFIER_OPTIONS
    sources = {name: ctx.get_parameter_source(name) for name in foreign}
    given = [name for name, source in sources.items() if source is not None and source.name == "COMMANDLINE"]
    if given:
        names = ", ".join("--" + name.replace("_", "-") for name in given)
        raise typer.BadParameter(f"not options of the {kind} judge: {names}", param_hint="--kind")


@app.command("train-judge")
def train_judge_command(
    ctx: typer.Context,
    kind: Annotated[
        JudgeKind,
        typer.Option(help="classifier: the CPU classifier's artifact; generative: SFT of the LLM judge (OpenRLHF)."),
    ] = "classifier",
    data_dir: Annotated[Path, typer.Option(help="classifier: the ESConv split directory.")] = Path(
        "../shared/data/esconv"
    ),
    out: Annotated[Path, typer.Option(help="classifier: where the artifact is written.")] = Path(
        "reward_server/artifacts"
    ),
    blind: Annotated[
        bool, typer.Option(help="classifier: train the blind baseline (never sees the dialogue history).")
    ] = False,
    rounds_per_dialogue: Annotated[int, typer.Option(help="classifier: Ns of the derived items.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of data derivation and training (both kinds).")] = 0,
    embedding_cache: Annotated[
        Path | None, typer.Option(help="classifier: optional .npz cache of text embeddings.")
    ] = None,
    hack_points: Annotated[
        int,
        typer.Option(
            help="classifier: hack-suite groups per train dialogue used as preference and fit negatives (0: none)."
        ),
    ] = 4,
    model: Annotated[str | None, typer.Option(help="generative: the base model (--model.model_name_or_path).")] = None,
    sft_data: Annotated[
        str | None, typer.Option(help="generative: unifireward data judge-sft's output directory (its openrlhf/).")
    ] = None,
    output_dir: Annotated[str | None, typer.Option(help="generative: where the fine-tuned judge is saved.")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="generative: peak learning rate (paper: 1e-5).")] = None,
    train_batch_size: Annotated[
        int | None, typer.Option(help="generative: global batch in conversations (paper: 64).")
    ] = None,
    micro_batch_size: Annotated[int | None, typer.Option(help="generative: conversations per forward and GPU.")] = None,
    epochs: Annotated[int | None, typer.Option(help="generative: passes over the training conversations.")] = None,
    max_len: Annotated[int | None, typer.Option(help="generative: longest conversation in tokens.")] = None,
    max_samples: Annotated[int | None, typer.Option(help="generative: train on the first N conversations.")] = None,
    warmup_ratio: Annotated[float | None, typer.Option(help="generative: share of steps warming up.")] = None,
    gpus: Annotated[int | None, typer.Option(help="generative: GPUs of the node the job runs on.")] = None,
    zero_stage: Annotated[int | None, typer.Option(help="generative: DeepSpeed ZeRO stage.")] = None,
    gradient_checkpointing: Annotated[
        bool | None, typer.Option(help="generative: recompute activations in the backward pass.")
    ] = None,
    attn_implementation: Annotated[
        str | None, typer.Option(help="generative: flash_attention_2, sdpa or eager (--local: sdpa).")
    ] = None,
    evaluate: Annotated[
        bool | None, typer.Option("--eval/--no-eval", help="generative: report the valid loss after each epoch.")
    ] = None,
    address: Annotated[str | None, typer.Option(help="generative: the Ray cluster's job server (dashboard).")] = None,
    local: Annotated[
        bool,
        typer.Option(
            help="generative: train here on the CPU, as a Ray job on a Ray head on 127.0.0.1 started and "
            "stopped here (docs/judge-training.md)."
        ),
    ] = False,
    work_dir: Annotated[
        Path, typer.Option(help="generative --local: the job's log and (if relative) the checkpoint go here.")
    ] = Path("runs/judge-sft"),
    dry_run: Annotated[bool, typer.Option(help="generative: print the command and run nothing.")] = False,
    wait: Annotated[bool, typer.Option(help="generative: follow the Ray job until it ends.")] = True,
    timeout: Annotated[float | None, typer.Option(help="generative: seconds to follow the job.")] = None,
    openrlhf_args: Annotated[
        list[str] | None, typer.Argument(help="generative: further OpenRLHF train_sft flags, after `--`.")
    ] = None,
) -> None:
    """Train a judge: the classifier (default) or, with --kind generative, SFT of the LLM judge (OpenRLHF)."""
    _refuse_other_kind(ctx, kind)
    if kind == "classifier":
        train_judge(data_dir, out, blind, rounds_per_dialogue, seed, embedding_cache, hack_points)
        return
    overrides: dict[str, Any] = {
        "model": model,
        "data_dir": sft_data,
        "output_dir": output_dir,
        "learning_rate": learning_rate,
        "train_batch_size": train_batch_size,
        "micro_batch_size": micro_batch_size,
        "epochs": epochs,
        "max_len": max_len,
        "max_samples": max_samples,
        "warmup_ratio": warmup_ratio,
        "seed": seed,
        "gpus": gpus,
        "zero_stage": zero_stage,
        "gradient_checkpointing": gradient_checkpointing,
        "attn_implementation": attn_implementation,
        "evaluate": evaluate,
        "ray_address": address,
    }
    _train_generative(overrides, openrlhf_args or [], local, work_dir, dry_run, wait, timeout)


def _train_generative(
    overrides: dict[str, Any],
    openrlhf_args: list[str],
    local: bool,
    work_dir: Path,
    dry_run: bool,
    wait: bool,
    timeout: float | None,
) -> None:
    """``train-judge --kind generative``: build the run, check it with OpenRLHF's parser, run or submit it."""
    import json
    import sys

    from pydantic import ValidationError

    from policy_trainer.judge_sft import (
        JudgeTrainingSettings,
        LocalSFTError,
        build_sft_command,
        local_sft_command,
        openrlhf_flags_of,
        parse_sft_args,
        run_local_sft,
        show_command,
        submit_sft,
    )
    from policy_trainer.launcher import JobError, wait_for_job
    from policy_trainer.openrlhf_cli import OpenRLHFError, OpenRLHFNotInstalledError

    def to_stderr(chunk: str) -> None:
        sys.stderr.write(chunk)

    def to_stdout(chunk: str) -> None:
        sys.stdout.write(chunk)

    def fail(message: str, code: int = 1) -> typer.Exit:
        typer.echo(f"error: {message}", err=True)
        return typer.Exit(code)

    try:
        run = JudgeTrainingSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise fail(str(exc), 2) from None
    if openrlhf_args:
        run = run.model_copy(update={"extra_args": [*run.extra_args, *openrlhf_args]})
    command = local_sft_command(run) if local else build_sft_command(run)
    try:
        for note in parse_sft_args(openrlhf_flags_of(command)).notes:
            typer.echo(f"OpenRLHF: {note}", err=True)
    except OpenRLHFNotInstalledError as exc:
        typer.echo(f"not checked: {exc}", err=True)
    except OpenRLHFError as exc:
        raise fail(str(exc)) from None
    typer.echo(show_command(command))
    if dry_run:
        return
    if local:
        try:
            done = run_local_sft(run, work_dir, timeout_s=timeout or 6 * 3600.0, on_log=to_stderr)
        except (LocalSFTError, OSError) as exc:
            raise fail(str(exc)) from None
        summary = {
            "output_dir": str(done.output_dir),
            "job_id": done.job_id,
            "losses_shown": len(done.losses),  # the progress bar redraws at most every 0.1 s: a sample of the steps
            "first_loss": done.losses[0] if done.losses else None,
            "last_loss": done.losses[-1] if done.losses else None,
            "wall_s": round(done.wall_s, 1),
            "log": str(done.log_path),
        }
        typer.echo(json.dumps(summary))
        return
    try:
        job_id = submit_sft(run)
        typer.echo(f"submitted job {job_id} to {run.ray_address}", err=True)
        if not wait:
            typer.echo(f"follow it with: ray job logs --follow --address {run.ray_address} {job_id}", err=True)
            return
        outcome = wait_for_job(run.ray_address, job_id, timeout, on_log=to_stdout)
    except JobError as exc:
        raise fail(str(exc)) from None
    if not outcome.succeeded:
        raise fail(f"job {job_id} {outcome.status}: {outcome.message.strip()}")


data_app.command("esconv-cer")(esconv_cer)
data_app.command("hack-suite")(hack_suite)
data_app.command("openrlhf-prompts")(openrlhf_prompts)
data_app.command("judge-sft")(judge_sft)
app.command("eval-judge")(eval_judge)
app.command("train")(train)
app.command("preflight")(preflight)


if __name__ == "__main__":
    app()
