"""The ``unifireward`` command: user-facing commands of every component.

Heavy imports (torch, sentence-transformers, the service apps) happen inside the commands, so
``unifireward --help`` is instant.
"""

from __future__ import annotations

import typer

from reward_server.judge_model.cli import esconv_cer, eval_judge, train_judge

app = typer.Typer(help="UnifiReward as a service: the reward service, its data and judge tools.", no_args_is_help=True)
data_app = typer.Typer(help="Build datasets from ESConv.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@app.command("serve")
def serve() -> None:
    """Start the reward service (settings from ``REWARD_*`` environment variables)."""
    from reward_server.__main__ import main

    main()


data_app.command("esconv-cer")(esconv_cer)
app.command("train-judge")(train_judge)
app.command("eval-judge")(eval_judge)
