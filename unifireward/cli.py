"""The ``unifireward`` command: user-facing commands of every component.

Heavy imports (torch, sentence-transformers, the service apps) happen inside the commands, so
``unifireward --help`` is instant.
"""

from __future__ import annotations

import typer

from policy_trainer.cli import openrlhf_prompts, preflight, train
from reward_server.judge_model.cli import esconv_cer, eval_judge, hack_suite, train_judge

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


data_app.command("esconv-cer")(esconv_cer)
data_app.command("hack-suite")(hack_suite)
data_app.command("openrlhf-prompts")(openrlhf_prompts)
app.command("train-judge")(train_judge)
app.command("eval-judge")(eval_judge)
app.command("train")(train)
app.command("preflight")(preflight)


if __name__ == "__main__":
    app()
