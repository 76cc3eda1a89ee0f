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

ARTIFACT_NAME = "judge-classifier-v2.npz"
BLIND_ARTIFACT_NAME = "judge-blind-v2.npz"


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
    hack_points: Annotated[
        int, typer.Option(help="Hack-suite groups per train dialogue used as preference and fit negatives (0: none).")
    ] = 4,
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
    artifact = run(
        data_dir, embed, embedding_dimension(model), blind, rounds_per_dialogue, seed, hack_points=hack_points
    )
    artifact.meta["model"] = "unifireward-esc-blind-v2" if blind else "unifireward-esc-classifier-v2"
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


def hack_suite(
    data_dir: Annotated[Path, typer.Option(help="Directory with esconv_{train,valid,test}.jsonl.")] = Path(
        "../shared/data/esconv"
    ),
    out: Annotated[Path, typer.Option(help="Output directory (git-ignored).")] = Path("data/hacks"),
    points_per_dialogue: Annotated[int, typer.Option(help="Dialogue points (groups) drawn per dialogue.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed; the output is a function of it.")] = 0,
) -> None:
    """Derive the reward-hacking suite from ESConv: groups of good replies and hacks (docs/judge.md)."""
    from collections import Counter

    from services.data.cer_data import write_jsonl
    from services.data.esconv import SPLITS, load_split, split_path
    from services.data.hack_suite import derive_suite

    summary = {}
    for split in SPLITS:
        groups = derive_suite(load_split(split_path(data_dir, split)), split, points_per_dialogue, seed)
        write_jsonl(groups, out / f"{split}.jsonl")
        kinds = Counter(c["kind"] for g in groups for c in g["candidates"])
        summary[split] = {"groups": len(groups), "candidates": dict(kinds)}
    typer.echo(json.dumps(summary, indent=2))


SUITES = ("table1", "hacks")


def eval_judge(
    data: Annotated[
        Path | None,
        typer.Option(
            help="Derived items (table1) or suite groups (hacks), JSON Lines; hacks derives them when omitted."
        ),
    ] = None,
    suite: Annotated[str, typer.Option(help="table1 (COMPEER Table 1 metrics) or hacks (the hack suite).")] = "table1",
    backend: Annotated[str, typer.Option(help="classifier, blind, fake, vllm or openai.")] = "classifier",
    model: Annotated[
        str | None, typer.Option(help="classifier: an artifact; vllm: a model directory; openai: the model name.")
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="openai: the server, up to /v1.")] = None,
    split: Annotated[
        str, typer.Option(help="hacks without --data: the ESConv split to derive (valid or test).")
    ] = "test",
    data_dir: Annotated[Path, typer.Option(help="hacks without --data: the ESConv directory.")] = Path(
        "../shared/data/esconv"
    ),
    baselines: Annotated[bool, typer.Option(help="hacks: also report the length baseline and the blind judge.")] = True,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N items or groups.")] = None,
    batch_size: Annotated[int, typer.Option(help="Tasks per backend call.")] = 256,
) -> None:
    """Judge derived items (COMPEER Table 1's metrics) or the hack suite, and print the figures as JSON."""
    import asyncio

    from reward_server.judge_model.evaluate import evaluate, evaluate_hacks, length_baseline, make_eval_backend
    from services.data.cer_data import read_jsonl

    if suite not in SUITES:
        raise typer.BadParameter(f"expected one of {', '.join(SUITES)}", param_hint="--suite")
    try:
        judge = make_eval_backend(backend, model, base_url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--backend") from exc
    if suite == "table1":
        if data is None:
            raise typer.BadParameter("table1 needs --data (unifireward data esconv-cer)", param_hint="--data")
        result = asyncio.run(evaluate(judge, read_jsonl(data, limit), batch_size))
        result["data"] = str(data)
        typer.echo(json.dumps(result, indent=2))
        return
    if data is not None:
        groups = read_jsonl(data, limit)
        source = str(data)
    else:
        from services.data.esconv import load_split, split_path
        from services.data.hack_suite import derive_suite

        if split not in ("valid", "test"):
            raise typer.BadParameter(
                "the suite is derived from valid or test (train is for training)", param_hint="--split"
            )
        groups = derive_suite(load_split(split_path(data_dir, split)), split)[:limit]
        source = f"{data_dir} ({split})"
    result = {"suite": "hacks", "data": source, "judge": asyncio.run(evaluate_hacks(judge, groups, batch_size))}
    if baselines:
        result["length_baseline"] = length_baseline(groups)
        result["blind_judge"] = asyncio.run(evaluate_hacks(make_eval_backend("blind"), groups, batch_size))
    typer.echo(json.dumps(result, indent=2))
