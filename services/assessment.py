"""Turn a judge's answers to a :class:`~services.judge_protocol.JudgeTask` into verdicts and a reward.

This is the one place where judgments become rewards, for every backend and for ``eval-judge``.

>>> from services.candidate_parser import parse_candidate
>>> from services.esc_schema import SCHEMAS
>>> from services.judge_protocol import build_task
>>> s = SCHEMAS["compeer"]
>>> task = build_task(s, "unified", [], parse_candidate(s.example, s), "Hi.")
>>> a = assess(task, ["Fits.\\nVerdict: True"] * 3 + ["Same.\\nPreference: C"])
>>> a.status, a.breakdown.reward
('ok', 5)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from services.judge_protocol import JudgeTask
from services.judgments import PreferenceJudgment, StepJudgment, parse_preference, parse_step_judgment
from services.rewards import RewardBreakdown, UnparseablePolicy, score

Status = Literal["ok", "parse_error", "backend_error"]


@dataclass(frozen=True)
class StepAssessment:
    """The judgment of one step. ``source`` is ``judge``, or ``rule`` for a step that was not written."""

    step: str
    verdict: bool | None
    rationale: str
    status: str
    source: Literal["judge", "rule"]


@dataclass(frozen=True)
class Assessment:
    """A judged candidate: per-step verdicts, the preference, the reward and what went wrong."""

    steps: list[StepAssessment]
    preference: PreferenceJudgment | None
    breakdown: RewardBreakdown
    status: Status
    errors: list[str] = field(default_factory=list)


def assess(task: JudgeTask, answers: list[str], policy: UnparseablePolicy = UnparseablePolicy.ZERO) -> Assessment:
    """Parse the answers to each turn of ``task`` and apply the reward rules.

    Args:
        task: the judge task.
        answers: one answer per turn of ``task``, in order; missing answers count as empty.
        policy: how an unparseable judgment counts.

    Returns:
        The assessment; ``status`` is ``parse_error`` when any judgment could not be read, and
        ``errors`` says which.
    """
    by_step: dict[str, StepJudgment] = {}
    pref: PreferenceJudgment | None = None
    for i, turn in enumerate(task.turns):
        answer = answers[i] if i < len(answers) else ""
        if turn.kind == "step" and turn.step is not None:
            by_step[turn.step] = parse_step_judgment(answer)
        else:
            pref = parse_preference(answer)
    steps: list[StepAssessment] = []
    errors: list[str] = []
    if task.mode != "orm":
        for spec in task.schema.steps:
            judged = by_step.get(spec.name)
            if judged is None:
                steps.append(StepAssessment(spec.name, False, "The candidate did not write this step.", "ok", "rule"))
                continue
            if judged.verdict is None:
                errors.append(f"judgment of step {spec.name!r} could not be parsed ({judged.status})")
            steps.append(StepAssessment(spec.name, judged.verdict, judged.rationale, judged.status, "judge"))
    if pref is not None and pref.preference is None:
        errors.append(f"preference judgment could not be parsed ({pref.status})")
    breakdown = score(
        [s.verdict for s in steps] if task.mode != "orm" else None,
        False if pref is None else pref.preference,
        task.candidate.complete,
        policy,
    )
    return Assessment(steps, pref, breakdown, "parse_error" if errors else "ok", errors)
