"""Train the CPU judge's heads on ESConv TRAIN, tune its thresholds on VALID (torch, CPU).

1. Field heads (emotion, strategy, stage) and the fit head are trained on every round of the train
   dialogues: a round gives its context, its gold reply, its labels, and for the fit head the gold
   reply against three worse ones (another dialogue's reply with the same strategy, a reply of another
   round of the same dialogue, a generic filler). The hack suite of the train dialogues (train
   families of wordings, :mod:`services.data.hack_suite`) adds good replies against hacks to the fit
   head, and good replies against the hacks that are bad in themselves to the tone head (the reply alone).
2. The verdict heads (one per field) and the preference head read the first-level outputs; they are
   trained on the derived TRAIN items (the preference also on the train suite's items,
   :func:`suite_records`) with out-of-fold first-level outputs (3 folds by dialogue), so they learn
   from outputs as uncertain as the ones they will see at serving time.
3. Each verdict threshold is tuned on the derived VALID items, and the preference's decision biases on
   the VALID items and the VALID suite (:func:`tune_preference_bias`); test is never read.
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
from reward_server.judge_model.judge import (
    FIELD_HEADS,
    PREFERENCES,
    ItemInputs,
    item_inputs,
    preference_choice,
    preference_inputs,
    score_items,
)
from services.core.candidate import parse_candidate
from services.core.schemas import EMOTIONS, SCHEMAS, STAGES, STRATEGIES
from services.data import cer_phrases
from services.data.cer_data import ReplyPool, derive_split, gold_stage
from services.data.esconv import dialogue_messages, extract_rounds, load_split, split_path
from services.data.hack_suite import derive_suite
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
    tone_x: list[np.ndarray] = field(default_factory=list)
    tone_y: list[float] = field(default_factory=list)
    tone_dialogue: list[int] = field(default_factory=list)

    def add_tone(self, ctx: F.ContextVectors, vector: np.ndarray, text: str, target: float, dialogue: int) -> None:
        """One row of the tone head."""
        self.tone_x.append(F.tone_features(ctx, vector, text))
        self.tone_y.append(target)
        self.tone_dialogue.append(dialogue)


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
            rows.add_tone(ctx, lookup(rnd.reply), rnd.reply, 1.0, d_index)
            rows.add_tone(ctx, lookup(worse[1]), worse[1], 0.0, d_index)
    return rows


def suite_records(groups: Sequence[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Preference items from hack-suite groups: each candidate against the gold reference (a hack is
    worse: ``first``; a good reply is as good: ``equal``), and for half the hacks the mirror (the hack as
    the reference, the gold reply as the candidate: ``second``), so a bad text is bad on either side.
    Every step is the gold step."""
    rng = random.Random(f"suite-records:{seed}")
    records: list[dict[str, Any]] = []
    steps = {name: True for name in _STEP_OF_FIELD.values()}
    for g in groups:
        gold = next(c for c in g["candidates"] if c["kind"] == "gold")
        for c in g["candidates"]:
            base = {"dialogue_index": g["dialogue_index"], "history": g["history"], "suite_kind": c["kind"]}
            good = c["label"] == "good"
            pref = "equal" if good else "first"
            records.append(
                {
                    **base,
                    "candidate": c["candidate"],
                    "reference": g["reference"],
                    "labels": {"steps": steps, "preference": pref},
                }
            )
            if not good and c["reply"].strip() and rng.random() < 0.5:
                mirror = {"steps": steps, "preference": "second"}
                records.append({**base, "candidate": gold["candidate"], "reference": c["reply"], "labels": mirror})
    return records


#: Hacks made of a real supporter message: bad where they stand, not in themselves (no tone-head rows).
_NOT_TONE = ("parrot_history", "contradicts_strategy")


def suite_fit_rows(rows: RoundRows, groups: Sequence[dict[str, Any]], lookup: F.Lookup, dim: int, blind: bool) -> None:
    """Fit-head rows from hack-suite groups: good replies 1, hacks 0 (empty replies are left to the rules)."""
    for g in groups:
        history = [] if blind else [(m["role"], m["content"]) for m in g["history"]]
        ctx = F.context_vectors(history, lookup, dim)
        for c in g["candidates"]:
            if c["kind"] == "gold" or not c["reply"].strip():
                continue  # the gold reply is already a round row
            rows.fit_x.append(F.fit_features(ctx, lookup(c["reply"]), c["reply"]))
            rows.fit_y.append(1.0 if c["label"] == "good" else 0.0)
            rows.fit_dialogue.append(g["dialogue_index"])
            if c["kind"] not in _NOT_TONE:
                rows.add_tone(ctx, lookup(c["reply"]), c["reply"], float(c["label"] == "good"), g["dialogue_index"])


def train_first_level(
    rows: RoundRows, keep: np.ndarray, keep_fit: np.ndarray, keep_tone: np.ndarray, seed: int
) -> dict[str, Head]:
    """Field heads, the fit head and the tone head on the rows selected by the masks."""
    heads: dict[str, Head] = {}
    for name, (_, vocab) in FIELD_HEADS.items():
        x = np.stack(rows.x[name])[keep]
        y = np.asarray(rows.y[name])[keep]
        heads[name] = train_head(x, y, len(vocab), weight_decay=0.05, epochs=12, lr=1e-3, seed=seed, std_floor=0.3)
    fx = np.stack(rows.fit_x)[keep_fit]
    fy = np.asarray(rows.fit_y)[keep_fit]
    heads["fit"] = train_head(fx, fy, 1, hidden=64, weight_decay=0.05, epochs=8, lr=1e-3, seed=seed)
    if rows.tone_x:
        tx = np.stack(rows.tone_x)[keep_tone]
        ty = np.asarray(rows.tone_y)[keep_tone]
        heads["tone"] = train_head(tx, ty, 1, hidden=32, weight_decay=0.05, epochs=8, lr=1e-3, seed=seed, std_floor=0.3)
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
            if value is None or "suite_kind" in items.records[i]:  # suite items train the preference only
                continue
            xs.append(F.verdict_features(s.probs[fname], vocab.index(value), prior))
            ys.append(float(items.records[i]["labels"]["steps"][_STEP_OF_FIELD[fname]]))
        out[fname] = (np.stack(xs), np.asarray(ys))
    for i, s in zip(idx, scores, strict=True):
        x = items.inputs[i]
        out["pref_x"].append(preference_inputs(s.fit_reply, s.fit_reference, x, s.tone_reply, s.tone_reference))
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


#: The biases tried on the ``equal`` and ``second`` options (``first`` and ``neither`` stay at 0).
_BIAS_GRID = [(float(e), float(sc)) for e in np.arange(0.0, 2.01, 0.1) for sc in (0.0, 0.25, 0.5, 0.75, 1.0)]


def _suite_discrete_accuracy(
    probs: np.ndarray, empty: np.ndarray, good: np.ndarray, group: np.ndarray, bias: Any
) -> float:
    """The share of (good, hack) pairs of a group ranked strictly right by preference and format alone
    (steps are the same gold steps within a suite group); an empty reply counts ``first`` and format -1."""
    choice = preference_choice(bias, probs)
    sign = np.where(np.isin(choice, [PREFERENCES.index("second"), PREFERENCES.index("equal")]), 1.0, -1.0)
    score = np.where(empty, -2.0, sign + 1.0)
    right = total = 0
    for g in np.unique(group):
        members = group == g
        goods, hacks = score[members & good], score[members & ~good]
        right += int((goods[:, None] > hacks[None, :]).sum())
        total += goods.size * hacks.size
    return right / total if total else 0.0


def tune_preference_bias(
    artifact: Artifact,
    valid_items: Items,
    valid_y: np.ndarray,
    suite_groups: Sequence[dict[str, Any]],
    lookup: F.Lookup,
    dim: int,
    blind: bool,
) -> tuple[list[float], dict[str, float]]:
    """The decision biases of the preference (on valid): the best discrete pairwise accuracy on the valid
    hack suite among the biases that keep the valid preference accuracy at least at its unbiased value."""
    records = [
        {"history": g["history"], "candidate": c["candidate"], "reference": g["reference"]}
        for g in suite_groups
        for c in g["candidates"]
    ]
    suite = prepare_items(records, lookup, dim, blind)
    suite_probs = np.stack([s.preference for s in score_items(artifact, suite.inputs)])
    empty = np.array([not c["reply"].strip() for g in suite_groups for c in g["candidates"]])
    good = np.array([c["label"] == "good" for g in suite_groups for c in g["candidates"]])
    group = np.array([i for i, g in enumerate(suite_groups) for _ in g["candidates"]])
    valid_probs = np.stack([s.preference for s in score_items(artifact, valid_items.inputs)])
    floor = float(np.mean(valid_probs.argmax(axis=1) == valid_y))
    best: tuple[float, list[float], float] = (-1.0, [0.0] * 4, floor)
    for b_equal, b_second in _BIAS_GRID:
        bias = [0.0, b_second, b_equal, 0.0]
        accuracy = float(np.mean(preference_choice(bias, valid_probs) == valid_y))
        if accuracy < floor:
            continue
        suite_accuracy = _suite_discrete_accuracy(suite_probs, empty, good, group, bias)
        if suite_accuracy > best[0] + 1e-9:
            best = (suite_accuracy, bias, accuracy)
    figures = {"suite_discrete_pairwise_accuracy": round(best[0], 4), "preference_accuracy": best[2]}
    figures["suite_discrete_pairwise_accuracy_unbiased"] = round(
        _suite_discrete_accuracy(suite_probs, empty, good, group, [0.0] * 4), 4
    )
    return best[1], figures


def train_judge(
    data_dir: Path,
    embed: Any,
    dim: int,
    blind: bool = False,
    rounds_per_dialogue: int = 4,
    seed: int = 0,
    min_false_recall: float = 0.65,
    hack_points: int = 4,
) -> Artifact:
    """Derive, embed, train and tune; returns the artifact (see the module docstring)."""
    t0 = time.perf_counter()
    dialogues = {s: load_split(split_path(data_dir, s)) for s in ("train", "valid")}
    records = {s: derive_split(d, s, rounds_per_dialogue, seed) for s, d in dialogues.items()}
    suite = {s: derive_suite(d, s, hack_points, seed) if hack_points else [] for s, d in dialogues.items()}
    suite_items = {s: suite_records(groups, seed) for s, groups in suite.items()}
    texts: set[str] = set(cer_phrases.FILLER_REPLIES)
    for groups in suite.values():
        for g in groups:
            texts.update(c["reply"] for c in g["candidates"])
    for ds in dialogues.values():
        for dialogue in ds:
            messages = dialogue_messages(dialogue)
            texts.update(m.content for m in messages)
            texts.update(r.reply for r in extract_rounds(messages))
    for rs in [*records.values(), *suite_items.values()]:
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
    suite_fit_rows(rows, suite["train"], lookup, dim, blind)
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
        "heads": ["emotion", "strategy", "stage", "fit", "tone"],
        "hack_points": hack_points,
    }
    train_items = prepare_items(records["train"] + suite_items["train"], lookup, dim, blind)
    valid_items = prepare_items(records["valid"], lookup, dim, blind)
    dialogue_of_row = np.asarray(rows.dialogue)
    dialogue_of_fit = np.asarray(rows.fit_dialogue)
    dialogue_of_tone = np.asarray(rows.tone_dialogue)
    second: dict[str, Any] = {"pref_x": [], "pref_y": [], **{f: ([], []) for f in FIELD_HEADS}}
    for fold in range(N_FOLDS):
        heads = train_first_level(
            rows,
            dialogue_of_row % N_FOLDS != fold,
            dialogue_of_fit % N_FOLDS != fold,
            dialogue_of_tone % N_FOLDS != fold,
            seed,
        )
        held = [i for i, r in enumerate(train_items.records) if r["dialogue_index"] % N_FOLDS == fold]
        part = second_level_inputs(Artifact(heads, meta), train_items, held)
        second["pref_x"] += part["pref_x"]
        second["pref_y"] += part["pref_y"]
        for fname in FIELD_HEADS:
            second[fname][0].append(part[fname][0])
            second[fname][1].append(part[fname][1])
        log.info("fold %d done (%.0f s)", fold, time.perf_counter() - t0)
    heads = train_first_level(
        rows,
        np.ones(len(dialogue_of_row), bool),
        np.ones(len(dialogue_of_fit), bool),
        np.ones(len(dialogue_of_tone), bool),
        seed,
    )
    for fname in FIELD_HEADS:
        x, y = np.concatenate(second[fname][0]), np.concatenate(second[fname][1])
        heads[f"verdict_{fname}"] = train_head(x, y, 1, weight_decay=1e-3, epochs=10, lr=3e-3, seed=seed)
    heads["preference"] = train_head(
        np.stack(second["pref_x"]),
        np.asarray(second["pref_y"]),
        4,
        hidden=32,
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
    meta["valid"]["preference_accuracy_unbiased"] = float(np.mean(pred == np.asarray(tuned["pref_y"])))
    meta["preference_bias"] = [0.0] * 4
    if suite["valid"]:
        meta["preference_bias"], meta["valid"]["preference_bias"] = tune_preference_bias(
            artifact, valid_items, np.asarray(tuned["pref_y"]), suite["valid"], lookup, dim, blind
        )
    meta["valid"]["preference_accuracy"] = float(
        np.mean(
            preference_choice(meta["preference_bias"], heads["preference"].softmax(np.stack(tuned["pref_x"])))
            == np.asarray(tuned["pref_y"])
        )
    )
    meta["train_seconds"] = round(time.perf_counter() - t0, 1)
    meta["embed_seconds"] = round(t_embed - t0, 1)
    meta["min_false_recall"] = min_false_recall
    log.info("valid: %s", meta["valid"])
    return artifact
