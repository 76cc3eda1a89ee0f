"""Typer commands of the trainer's data: ``data openrlhf-prompts`` (registered in :mod:`services.cli`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer


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
    from services.cer_data import write_jsonl
    from services.esconv import SPLITS, load_split, split_path

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
