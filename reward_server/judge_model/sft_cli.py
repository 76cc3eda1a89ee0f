"""Typer command ``data judge-sft``: the generative judge's SFT data from the derived CER items.

Registered in :mod:`unifireward.cli`; the builder is :mod:`services.data.judge_sft` (docs/judge-training.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def judge_sft(
    items: Annotated[
        Path, typer.Option(help="Directory with {train,valid,test}.jsonl from `unifireward data esconv-cer`.")
    ] = Path("data/cer"),
    out: Annotated[
        Path, typer.Option(help="Output directory (git-ignored): openrlhf/<split>.jsonl and messages/<split>.jsonl.")
    ] = Path("data/judge-sft"),
    modes: Annotated[str, typer.Option(help="Judge modes to write, comma-separated.")] = "unified,prm,orm",
    dual_order: Annotated[
        bool, typer.Option(help="Also write each preference asked with the candidate first (REWARD_DUAL_ORDER).")
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the rationales' wording; the output is a function of it.")] = 0,
    rationale_max_chars: Annotated[
        int, typer.Option(help="Longest rationale: the service's REWARD_RATIONALE_MAX_CHARS.")
    ] = 600,
    strict: Annotated[
        bool, typer.Option(help="Stop at the first line that is no item, instead of skipping it and counting why.")
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Read only the first N items of each split.")] = None,
) -> None:
    """Write the judge conversations of the derived CER items, gold judgments as answers (per split)."""
    from pydantic import ValidationError

    from services.data.esconv import SPLITS
    from services.data.judge_sft import (
        FORMATS,
        JudgeSFTConfig,
        RecordError,
        build_conversations,
        read_items_file,
        write_formats,
    )

    try:
        config = JudgeSFTConfig.model_validate(
            {
                "modes": tuple(m.strip() for m in modes.split(",") if m.strip()),
                "dual_order": dual_order,
                "seed": seed,
                "rationale_max_chars": rationale_max_chars,
            }
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        option = "--" + str(error["loc"][0] if error["loc"] else "modes").replace("_", "-")
        raise typer.BadParameter(str(error["msg"]), param_hint=option) from exc
    paths = {split: items / f"{split}.jsonl" for split in SPLITS}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise typer.BadParameter(
            f"missing {', '.join(missing)}: run `unifireward data esconv-cer`", param_hint="--items"
        )
    summary = {}
    for split, path in paths.items():
        try:
            read = read_items_file(path, strict=strict, limit=limit)
        except RecordError as exc:
            raise typer.BadParameter(f"{path}, {exc}", param_hint="--items") from exc
        kinds = write_formats(build_conversations(read.items, config), out, split)
        total = sum(kinds.values())
        summary[split] = {
            "items": len(read.items),
            "skipped": dict(read.skipped),
            "conversations": dict(kinds),
            "records": {name: total for name in FORMATS},
        }
    typer.echo(json.dumps({"out": str(out), "formats": list(FORMATS), "splits": summary}, indent=2))
