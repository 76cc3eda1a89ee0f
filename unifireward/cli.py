"""The ``unifireward`` command: user-facing commands of every component.

Heavy imports (torch, sentence-transformers, the service apps) happen inside the commands, so
``unifireward --help`` is instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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


data_app.command("esconv-cer")(esconv_cer)
data_app.command("hack-suite")(hack_suite)
data_app.command("openrlhf-prompts")(openrlhf_prompts)
data_app.command("judge-sft")(judge_sft)
app.command("train-judge")(train_judge)
app.command("eval-judge")(eval_judge)
app.command("train")(train)
app.command("preflight")(preflight)


if __name__ == "__main__":
    app()
