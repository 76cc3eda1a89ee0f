"""From a judge's verdicts on a :class:`~services.core.judge_prompts.JudgeTask` to the candidate's reward.

This is the one place where judgments become rewards, for every backend and for ``eval-judge``.
Backends hand over structured verdicts (:data:`~services.core.judgments.Judgment`, one per turn); a
generative judge's text is read into them first (:func:`read_answers`).

>>> from services.core.candidate import parse_candidate
>>> from services.core.schemas import SCHEMAS
>>> from services.core.judge_prompts import build_task
>>> s = SCHEMAS["compeer"]
>>> task = build_task(s, "unified", [], parse_candidate(s.example, s), "Hi.")
>>> a = judge_outcome(task, read_answers(task, ["Fits.\\nVerdict: True"] * 3 + ["Same.\\nPreference: C"]))
>>> a.status, a.breakdown.reward
('ok', 5)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from services.core.judge_prompts import JudgeTask
from services.core.judgments import Judgment, PreferenceJudgment, StepJudgment, read_answer
from services.core.rewards import RewardBreakdown, UnparseablePolicy, compeer_reward
from services.core.types import ItemStatus, Scoring


@dataclass(frozen=True)
class StepOutcome:
    """The judgment of one step. ``source`` is ``judge``, or ``rule`` for a step that was not written."""

    step: str
    verdict: bool | None
    rationale: str
    status: str
    source: Literal["judge", "rule"]
    p_correct: float | None = None


@dataclass(frozen=True)
class JudgeOutcome:
    """A judged candidate: per-step verdicts, the preference, the reward and what went wrong."""

    steps: list[StepOutcome]
    preference: PreferenceJudgment | None
    breakdown: RewardBreakdown
    status: ItemStatus
    errors: list[str] = field(default_factory=list)


def read_answers(task: JudgeTask, answers: Sequence[str]) -> list[Judgment]:
    """Read a generative judge's answer to each turn of ``task``; a missing answer reads as empty."""
    return [read_answer(turn.kind, answers[i] if i < len(answers) else "") for i, turn in enumerate(task.turns)]


def judge_outcome(
    task: JudgeTask,
    verdicts: Sequence[Judgment],
    policy: UnparseablePolicy = UnparseablePolicy.ZERO,
    scoring: Scoring = "discrete",
) -> JudgeOutcome:
    """Apply COMPEER's reward rules to the verdicts on each turn of ``task``.

    Args:
        task: the judge task.
        verdicts: one judgment per turn of ``task``, in order; a missing one counts as empty.
        policy: how an unparseable judgment counts.
        scoring: ``discrete`` (COMPEER's +1/-1) or ``expected`` (expectations under the judge's
            probabilities, where it gave them).

    Returns:
        The outcome; ``status`` is ``parse_error`` when any judgment could not be read, and
        ``errors`` says which.
    """
    by_step: dict[str, StepJudgment] = {}
    pref: PreferenceJudgment | None = None
    for i, turn in enumerate(task.turns):
        judged = verdicts[i] if i < len(verdicts) else read_answer(turn.kind, "")
        if isinstance(judged, StepJudgment) and turn.step is not None:
            by_step[turn.step] = judged
        elif isinstance(judged, PreferenceJudgment):
            pref = judged
    steps: list[StepOutcome] = []
    errors: list[str] = []
    if task.mode != "orm":
        for spec in task.schema.steps:
            step = by_step.get(spec.name)
            if step is None:
                steps.append(StepOutcome(spec.name, False, "The candidate did not write this step.", "ok", "rule"))
                continue
            if step.verdict is None:
                errors.append(f"judgment of step {spec.name!r} could not be parsed ({step.status})")
            steps.append(StepOutcome(spec.name, step.verdict, step.rationale, step.status, "judge", step.p_correct))
    if pref is not None and pref.preference is None:
        errors.append(f"preference judgment could not be parsed ({pref.status})")
    breakdown = compeer_reward(
        [s.verdict for s in steps] if task.mode != "orm" else None,
        False if pref is None else pref.preference,
        task.candidate.complete,
        policy,
        scoring=scoring,
        p_correct=[s.p_correct for s in steps],
        preference_probabilities=pref.probabilities if pref is not None else None,
    )
    return JudgeOutcome(steps, pref, breakdown, "parse_error" if errors else "ok", errors)
