"""``eval-judge``: run a backend on derived items and compute the judge metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reward_server.backends.base import JudgeBackend
from services.core.candidate import parse_candidate
from services.core.judge_prompts import build_task
from services.core.outcome import judge_outcome
from services.core.schemas import SCHEMAS
from services.core.types import DialogueMessage
from services.data.judge_metrics import inconsistency_ratio, preference_metrics, step_metrics

_ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def make_eval_backend(name: str) -> JudgeBackend:
    """``classifier`` (the committed artifact), ``blind`` (the blind baseline's artifact) or ``fake``.

    Raises:
        ValueError: unknown name.
    """
    if name in ("classifier", "blind"):
        from reward_server.backends.classifier import ClassifierJudge
        from reward_server.judge_model.cli import ARTIFACT_NAME, BLIND_ARTIFACT_NAME

        return ClassifierJudge(artifact=_ARTIFACTS / (BLIND_ARTIFACT_NAME if name == "blind" else ARTIFACT_NAME))
    if name == "fake":
        from reward_server.backends.fake import FakeJudge

        return FakeJudge()
    raise ValueError(f"unknown backend {name!r}; expected classifier, blind or fake")


async def evaluate(backend: JudgeBackend, records: Sequence[dict[str, Any]], batch_size: int = 256) -> dict[str, Any]:
    """Judge every record in unified mode and compare with its labels.

    Args:
        backend: a judge backend (started and closed here).
        records: derived items (``docs/data.md``).
        batch_size: tasks per ``judge`` call.

    Returns:
        Per step weighted F1 and False recall, preference weighted F1 and accuracy, the
        inconsistency ratio of the judge and of the gold labels, and parse/backend failure counts.
    """
    schema = SCHEMAS["compeer"]
    step_names = [s.name for s in schema.steps]
    tasks = [
        build_task(
            SCHEMAS[r.get("schema", "compeer")],
            "unified",
            [DialogueMessage(m["role"], m["content"]) for m in r["history"]],
            parse_candidate(r["candidate"], SCHEMAS[r.get("schema", "compeer")]),
            r["reference"],
        )
        for r in records
    ]
    await backend.start()
    started = time.perf_counter()
    try:
        replies = []
        for i in range(0, len(tasks), batch_size):
            replies += await backend.judge(tasks[i : i + batch_size])
    finally:
        await backend.close()
    seconds = time.perf_counter() - started
    verdicts: dict[str, list[bool | None]] = {n: [] for n in step_names}
    prefs: list[str | None] = []
    failures = {"parse_error": 0, "backend_error": 0}
    for task, reply in zip(tasks, replies, strict=True):
        if reply.error is not None:
            failures["backend_error"] += 1
        assessment = judge_outcome(task, reply.verdicts)
        if assessment.status == "parse_error":
            failures["parse_error"] += 1
        by_name = {s.step: s.verdict for s in assessment.steps}
        for n in step_names:
            verdicts[n].append(by_name.get(n))
        prefs.append(assessment.preference.preference if assessment.preference else None)
    truth_steps = {n: [bool(r["labels"]["steps"][n]) for r in records] for n in step_names}
    truth_pref = [r["labels"]["preference"] for r in records]
    per_item = [[verdicts[n][i] for n in step_names] for i in range(len(records))]
    gold_items: list[list[bool | None]] = [[truth_steps[n][i] for n in step_names] for i in range(len(records))]
    return {
        "backend": backend.name,
        "model": backend.model,
        "items": len(records),
        "steps": {n: step_metrics(truth_steps[n], verdicts[n]) for n in step_names},
        "preference": preference_metrics(truth_pref, prefs),
        "inconsistency_ratio": inconsistency_ratio(per_item, prefs),
        "inconsistency_ratio_of_labels": inconsistency_ratio(gold_items, list(truth_pref)),
        "preference_accuracy_by_pairing": _accuracy_by_pairing(records, prefs),
        "failures": failures,
        "judge_seconds": round(seconds, 1),
    }


def _accuracy_by_pairing(records: Sequence[dict[str, Any]], prefs: Sequence[str | None]) -> dict[str, Any]:
    """Preference accuracy per ``reply_source > reference_source`` (where the records say them).

    Shows which kinds of pairs a judge gets right: a blind judge should be at chance on every
    pairing whose answer needs the dialogue.
    """
    hits: dict[str, list[int]] = {}
    for record, pref in zip(records, prefs, strict=True):
        if "reply_source" not in record:
            continue
        key = f"{record['reply_source']} > {record['reference_source']}"
        hits.setdefault(key, []).append(int(pref == record["labels"]["preference"]))
    return {key: {"n": len(v), "accuracy": round(sum(v) / len(v), 3)} for key, v in sorted(hits.items())}
