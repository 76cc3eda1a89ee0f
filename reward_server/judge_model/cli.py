"""Typer commands of the judge: ``data esconv-cer``, ``train-judge`` and ``eval-judge``.

Registered in :mod:`unifireward.cli`; heavy imports (torch, sentence-transformers) stay inside the commands.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Annotated

import typer

ARTIFACT_NAME = "judge-classifier-v1.npz"
BLIND_ARTIFACT_NAME = "judge-blind-v1.npz"


def esconv_cer(
    data_dir: Annotated[Path, typer.Option(help="Directory with esconv_{train,valid,test}.jsonl.")] = Path(
        "../shared/data/esconv"
    ),
    out: Annotated[Path, typer.Option(help="Output directory (git-ignored).")] = Path("data/cer"),
    rounds_per_dialogue: Annotated[int, typer.Option(help="Ns: rounds drawn per dialogue (COMPEER eq. 1).")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed; the output is a function of it.")] = 0,
) -> None:
    """Derive the labelled CER judge items from ESConv (train/valid/test JSON Lines)."""
    from services.data.cer_data import derive_split, label_counts, write_jsonl
    from services.data.esconv import SPLITS, load_split, split_path

    summary = {}
    for split in SPLITS:
        records = derive_split(load_split(split_path(data_dir, split)), split, rounds_per_dialogue, seed)
        write_jsonl(records, out / f"{split}.jsonl")
        summary[split] = label_counts(records)
    typer.echo(json.dumps(summary, indent=2))


def train_judge(
    data_dir: Annotated[Path, typer.Option(help="ESConv split directory.")] = Path("../shared/data/esconv"),
    out: Annotated[Path, typer.Option(help="Where the artifact is written.")] = Path("reward_server/artifacts"),
    blind: Annotated[bool, typer.Option(help="Train the blind baseline (never sees the dialogue history).")] = False,
    rounds_per_dialogue: Annotated[int, typer.Option(help="Ns of the derived items.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of data derivation and training.")] = 0,
    embedding_cache: Annotated[Path | None, typer.Option(help="Optional .npz cache of text embeddings.")] = None,
) -> None:
    """Train the classifier judge on ESConv train, tune it on valid, and write its artifact."""
    import torch

    from reward_server.judge_model.encoder import CachedEmbedder, load_encoder
    from reward_server.judge_model.train import train_judge as run
    from services.models.sentence_encoder import embedding_dimension

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.manual_seed(seed)
    start = time.perf_counter()
    model = load_encoder()
    embed = CachedEmbedder(model, embedding_cache)
    artifact = run(data_dir, embed, embedding_dimension(model), blind, rounds_per_dialogue, seed)
    artifact.meta["model"] = "unifireward-esc-blind-v1" if blind else "unifireward-esc-classifier-v1"
    artifact.meta["total_seconds"] = round(time.perf_counter() - start, 1)
    path = out / (BLIND_ARTIFACT_NAME if blind else ARTIFACT_NAME)
    artifact.save(path)
    typer.echo(
        json.dumps(
            {
                "artifact": str(path),
                "bytes": path.stat().st_size,
                "valid": artifact.meta["valid"],
                "thresholds": artifact.meta["thresholds"],
                "seconds": artifact.meta["total_seconds"],
            },
            indent=2,
        )
    )


def eval_judge(
    data: Annotated[Path, typer.Option(help="Derived items (JSON Lines), e.g. data/cer/test.jsonl.")],
    backend: Annotated[str, typer.Option(help="classifier, blind or fake.")] = "classifier",
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N items.")] = None,
    batch_size: Annotated[int, typer.Option(help="Tasks per backend call.")] = 256,
) -> None:
    """Judge derived items and print COMPEER Table 1's metrics as JSON."""
    import asyncio

    from reward_server.judge_model.evaluate import evaluate, make_eval_backend
    from services.data.cer_data import read_jsonl

    try:
        judge = make_eval_backend(backend)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--backend") from exc
    records = read_jsonl(data, limit)
    result = asyncio.run(evaluate(judge, records, batch_size))
    result["data"] = str(data)
    typer.echo(json.dumps(result, indent=2))
