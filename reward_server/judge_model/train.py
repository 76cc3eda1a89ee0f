"""Train the CPU judge's heads on ESConv TRAIN, tune its thresholds on VALID (torch, CPU).

1. Field heads (emotion, strategy, stage) and the fit head are trained on every round of the train
   dialogues: a round gives its context, its gold reply, its labels, and for the fit head the gold
   reply against three worse ones (another dialogue's reply with the same strategy, a reply of another
   round of the same dialogue, a generic filler).
2. The verdict heads (one per field) and the preference head read the first-level outputs; they are
   trained on the derived TRAIN items with out-of-fold first-level outputs (3 folds by dialogue), so
   they learn from outputs as uncertain as the ones they will see at serving time.
3. Each verdict threshold is tuned on the derived VALID items (test is never read).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reward_server.judge_model import features as F
from reward_server.judge_model.heads import Artifact, Head
from reward_server.judge_model.judge import FIELD_HEADS, PREFERENCES, ItemInputs, item_inputs, score_items
from services.core.candidate import parse_candidate
from services.core.schemas import EMOTIONS, SCHEMAS, STAGES, STRATEGIES
from services.data import cer_phrases
from services.data.cer_data import ReplyPool, derive_split, gold_stage
from services.data.esconv import dialogue_messages, extract_rounds, load_split, split_path
from services.data.judge_metrics import recall, weighted_f1

log = logging.getLogger(__name__)
N_FOLDS = 3
_STEP_OF_FIELD = {"stage": "history_analysis", "emotion": "emotional_state", "strategy": "support_strategy"}


@dataclass
class RoundRows:
    """First-level training rows from every round of a set of dialogues."""

    dialogue: list[int] = field(default_factory=list)
    x: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in ("emotion", "strategy", "stage")})
    y: dict[str, list[int]] = field(default_factory=lambda: {k: [] for k in ("emotion", "strategy", "stage")})
    fit_x: list[np.ndarray] = field(default_factory=list)
    fit_y: list[float] = field(default_factory=list)
    fit_dialogue: list[int] = field(default_factory=list)


def train_head(
    x: np.ndarray,
    y: np.ndarray,
    n_out: int,
    hidden: int = 0,
    weight_decay: float = 1e-4,
    epochs: int = 20,
    lr: float = 3e-3,
    batch_size: int = 256,
    seed: int = 0,
    std_floor: float = 1e-6,
) -> Head:
    """Fit a softmax (``n_out`` > 1) or sigmoid (``n_out`` == 1) head with minibatch AdamW.

    Args:
        x: inputs (n, d); standardised inside the head.
        y: class indices, or 0/1 targets when ``n_out`` == 1.
        n_out: classes, or 1.
        hidden: hidden units (0: linear).
        weight_decay: AdamW's decoupled weight decay.
        epochs: passes over the data.
        lr: learning rate.
        batch_size: rows per step.
        seed: torch and shuffling seed.
        std_floor: smallest standard deviation used to scale an input (keeps rare hashed words small).

    Returns:
        The trained head.
    """
    torch.manual_seed(seed)
    mean = x.mean(axis=0).astype(np.float32)
    std = x.std(axis=0).astype(np.float32)
    std = np.maximum(std, std_floor).astype(np.float32)
    xt = torch.from_numpy(((x - mean) / std).astype(np.float32))
    yt = torch.from_numpy(y.astype(np.float32 if n_out == 1 else np.int64))
    layers: list[torch.nn.Module] = (
        [torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_out)]
        if hidden
        else [torch.nn.Linear(x.shape[1], n_out)]
    )
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn: torch.nn.Module = torch.nn.BCEWithLogitsLoss() if n_out == 1 else torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), batch_size):
            idx = order[start : start + batch_size]
            out = net(xt[idx])
            loss = loss_fn(out[:, 0] if n_out == 1 else out, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    return Head(
        mean=mean,
        std=std,
        weights=[m.weight.detach().numpy().T.copy() for m in linears],
        biases=[m.bias.detach().numpy().copy() for m in linears],
    )


def round_rows(dialogues: Sequence[dict[str, Any]], lookup: F.Lookup, dim: int, blind: bool, seed: int) -> RoundRows:
    """First-level rows from every round of ``dialogues``."""
    rng = random.Random(f"fit:{seed}")
    pool = ReplyPool.build(dialogues)
    rows = RoundRows()
    for d_index, dialogue in enumerate(dialogues):
        messages = dialogue_messages(dialogue)
        rounds = extract_rounds(messages)
        emotion = EMOTIONS.index(str(dialogue["emotion_type"]).strip().lower())
        for rnd in rounds:
            history = [] if blind else [(m.role, m.content) for m in messages[: rnd.start]]
            x = item_inputs(history, rnd.reply, rnd.reply, lookup, dim)
            rows.dialogue.append(d_index)
            for name, label in (
                ("emotion", emotion),
                ("strategy", STRATEGIES.index(rnd.strategy)),
                ("stage", STAGES.index(gold_stage(rounds, rnd.index, len(messages)))),
            ):
                rows.x[name].append(getattr(x, name))
                rows.y[name].append(label)
            ctx = F.context_vectors(history, lookup, dim)
            others = [r.reply for r in rounds if r.strategy != rnd.strategy and r.reply != rnd.reply]
            worse = [pool.draw(rng, d_index, rnd.strategy, {rnd.reply}), rng.choice(cer_phrases.FILLER_REPLIES)]
            if others:
                worse.append(rng.choice(others))
            for text, target in [(rnd.reply, 1.0)] + [(w, 0.0) for w in worse]:
                rows.fit_x.append(F.fit_features(ctx, lookup(text), text))
                rows.fit_y.append(target)
                rows.fit_dialogue.append(d_index)
    return rows


def train_first_level(rows: RoundRows, keep: np.ndarray, keep_fit: np.ndarray, seed: int) -> dict[str, Head]:
    """Field heads and the fit head on the rows selected by the masks."""
    heads: dict[str, Head] = {}
    for name, (_, vocab) in FIELD_HEADS.items():
        x = np.stack(rows.x[name])[keep]
        y = np.asarray(rows.y[name])[keep]
        heads[name] = train_head(x, y, len(vocab), weight_decay=0.05, epochs=12, lr=1e-3, seed=seed, std_floor=0.3)
    fx = np.stack(rows.fit_x)[keep_fit]
    fy = np.asarray(rows.fit_y)[keep_fit]
    heads["fit"] = train_head(fx, fy, 1, hidden=64, weight_decay=0.05, epochs=8, lr=1e-3, seed=seed)
    return heads


@dataclass
class Items:
    """Derived items ready for scoring: inputs, stated values, labels."""

    records: list[dict[str, Any]]
    inputs: list[ItemInputs]
    stated: list[dict[str, str | None]]


def prepare_items(records: list[dict[str, Any]], lookup: F.Lookup, dim: int, blind: bool) -> Items:
    """Head inputs and stated field values of derived records."""
    schema = SCHEMAS["compeer"]
    inputs, stated = [], []
    for record in records:
        parsed = parse_candidate(record["candidate"], schema)
        history = [(m["role"], m["content"]) for m in record["history"]]
        inputs.append(item_inputs(history, parsed.response, record["reference"], lookup, dim, blind))
        values: dict[str, str | None] = {}
        for fname, step in _STEP_OF_FIELD.items():
            values[fname] = parsed.steps[step].fields.get(fname) if step in parsed.steps else None
        stated.append(values)
    return Items(records, inputs, stated)


def second_level_inputs(artifact: Artifact, items: Items, idx: Sequence[int]) -> dict[str, Any]:
    """Verdict-head inputs per field and preference-head inputs for the items at ``idx``."""
    scores = score_items(artifact, [items.inputs[i] for i in idx])
    out: dict[str, Any] = {"pref_x": [], "pref_y": []}
    for fname, (_, vocab) in FIELD_HEADS.items():
        prior = np.asarray(artifact.meta["priors"][fname], dtype=np.float32)
        xs, ys = [], []
        for i, s in zip(idx, scores, strict=True):
            value = items.stated[i][fname]
            if value is None:
                continue
            xs.append(F.verdict_features(s.probs[fname], vocab.index(value), prior))
            ys.append(float(items.records[i]["labels"]["steps"][_STEP_OF_FIELD[fname]]))
        out[fname] = (np.stack(xs), np.asarray(ys))
    for i, s in zip(idx, scores, strict=True):
        x = items.inputs[i]
        out["pref_x"].append(
            F.preference_features(s.fit_reply, s.fit_reference, x.identical, x.cosine, x.reply_text, x.reference_text)
        )
        out["pref_y"].append(PREFERENCES.index(items.records[i]["labels"]["preference"]))
    return out


def tune_threshold(p_ok: np.ndarray, y: np.ndarray, min_false_recall: float) -> tuple[float, dict[str, float]]:
    """The threshold on P(correct) with the best weighted F1 among those catching enough wrong steps.

    Falls back to the best weighted F1 + False recall when none reaches ``min_false_recall``.
    """
    truth = [bool(v) for v in y]
    best: tuple[float, float, dict[str, float]] | None = None
    fallback: tuple[float, float, dict[str, float]] | None = None
    for t in np.unique(np.quantile(p_ok, np.linspace(0.01, 0.6, 120))):
        pred = [bool(v) for v in p_ok >= t]
        m = {"weighted_f1": weighted_f1(truth, pred), "false_recall": recall(truth, pred, False)}
        if m["false_recall"] >= min_false_recall and (best is None or m["weighted_f1"] > best[1]):
            best = (float(t), m["weighted_f1"], m)
        score = m["weighted_f1"] + m["false_recall"]
        if fallback is None or score > fallback[1]:
            fallback = (float(t), score, m)
    chosen = best or fallback
    assert chosen is not None
    return chosen[0], chosen[2]


def train_judge(
    data_dir: Path,
    embed: Any,
    dim: int,
    blind: bool = False,
    rounds_per_dialogue: int = 4,
    seed: int = 0,
    min_false_recall: float = 0.65,
) -> Artifact:
    """Derive, embed, train and tune; returns the artifact (see the module docstring)."""
    t0 = time.perf_counter()
    dialogues = {s: load_split(split_path(data_dir, s)) for s in ("train", "valid")}
    records = {s: derive_split(d, s, rounds_per_dialogue, seed) for s, d in dialogues.items()}
    texts: set[str] = set(cer_phrases.FILLER_REPLIES)
    for ds in dialogues.values():
        for dialogue in ds:
            messages = dialogue_messages(dialogue)
            texts.update(m.content for m in messages)
            texts.update(r.reply for r in extract_rounds(messages))
    for rs in records.values():
        for record in rs:
            texts.add(record["reference"])
            texts.update(m["content"] for m in record["history"])
            texts.add(parse_candidate(record["candidate"], SCHEMAS["compeer"]).response or "")
    ordered = sorted(t for t in texts if t)
    log.info("embedding %d texts", len(ordered))
    table = dict(zip(ordered, embed(ordered), strict=True))
    lookup = table.__getitem__
    t_embed = time.perf_counter()
    log.info("embedded in %.0f s", t_embed - t0)

    rows = round_rows(dialogues["train"], lookup, dim, blind, seed)
    priors = {
        name: ((np.bincount(rows.y[name], minlength=len(vocab)) + 1) / (len(rows.y[name]) + len(vocab))).tolist()
        for name, (_, vocab) in FIELD_HEADS.items()
    }
    meta: dict[str, Any] = {
        "dim": dim,
        "blind": blind,
        "priors": priors,
        "seed": seed,
        "rounds_per_dialogue": rounds_per_dialogue,
        "heads": ["emotion", "strategy", "stage", "fit"],
    }
    train_items = prepare_items(records["train"], lookup, dim, blind)
    valid_items = prepare_items(records["valid"], lookup, dim, blind)
    dialogue_of_row = np.asarray(rows.dialogue)
    dialogue_of_fit = np.asarray(rows.fit_dialogue)
    second: dict[str, Any] = {"pref_x": [], "pref_y": [], **{f: ([], []) for f in FIELD_HEADS}}
    for fold in range(N_FOLDS):
        heads = train_first_level(rows, dialogue_of_row % N_FOLDS != fold, dialogue_of_fit % N_FOLDS != fold, seed)
        held = [i for i, r in enumerate(train_items.records) if r["dialogue_index"] % N_FOLDS == fold]
        part = second_level_inputs(Artifact(heads, meta), train_items, held)
        second["pref_x"] += part["pref_x"]
        second["pref_y"] += part["pref_y"]
        for fname in FIELD_HEADS:
            second[fname][0].append(part[fname][0])
            second[fname][1].append(part[fname][1])
        log.info("fold %d done (%.0f s)", fold, time.perf_counter() - t0)
    heads = train_first_level(rows, np.ones(len(dialogue_of_row), bool), np.ones(len(dialogue_of_fit), bool), seed)
    for fname in FIELD_HEADS:
        x, y = np.concatenate(second[fname][0]), np.concatenate(second[fname][1])
        heads[f"verdict_{fname}"] = train_head(x, y, 1, weight_decay=1e-3, epochs=10, lr=3e-3, seed=seed)
    heads["preference"] = train_head(
        np.stack(second["pref_x"]),
        np.asarray(second["pref_y"]),
        4,
        hidden=16,
        weight_decay=1e-3,
        epochs=15,
        lr=3e-3,
        seed=seed,
    )
    meta["heads"] = list(heads)
    artifact = Artifact(heads, meta)
    tuned = second_level_inputs(artifact, valid_items, range(len(valid_items.records)))
    meta["thresholds"], meta["valid"] = {}, {}
    for fname in FIELD_HEADS:
        x, y = tuned[fname]
        p_ok = heads[f"verdict_{fname}"].sigmoid(x)
        meta["thresholds"][fname], meta["valid"][fname] = tune_threshold(p_ok, y, min_false_recall)
    pred = heads["preference"].softmax(np.stack(tuned["pref_x"])).argmax(axis=1)
    meta["valid"]["preference_accuracy"] = float(np.mean(pred == np.asarray(tuned["pref_y"])))
    meta["train_seconds"] = round(time.perf_counter() - t0, 1)
    meta["embed_seconds"] = round(t_embed - t0, 1)
    meta["min_false_recall"] = min_false_recall
    log.info("valid: %s", meta["valid"])
    return artifact
