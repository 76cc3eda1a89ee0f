"""The classifier judge's model on the committed heads with a stand-in encoder: odd inputs, the cache."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pytest

from reward_server.backends.classifier import DEFAULT_ARTIFACT
from reward_server.judge_model.heads import Artifact
from reward_server.judge_model.judge import JudgeModel
from services.core.candidate import parse_candidate
from services.core.judge_prompts import JudgeTask, build_task
from services.core.judgments import PreferenceJudgment, StepJudgment, parse_preference, parse_step_judgment
from services.core.outcome import judge_outcome
from services.core.schemas import SCHEMAS
from services.core.types import DialogueMessage

SCHEMA = SCHEMAS["compeer"]


class StandInEncoder:
    """Deterministic unit vectors per text; records how many texts it was asked to embed."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.embedded = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        out = np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=self.dim) for t in texts])
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def model() -> tuple[JudgeModel, StandInEncoder]:
    artifact = Artifact.load(DEFAULT_ARTIFACT)
    encoder = StandInEncoder(int(artifact.meta["dim"]))
    return JudgeModel(artifact, encoder, cache_size=6), encoder


def task(history: list[DialogueMessage], candidate: str, reference: str | None, mode: str = "unified") -> JudgeTask:
    return build_task(SCHEMA, mode, history, parse_candidate(candidate, SCHEMA), reference)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("history", "candidate", "reference", "mode"),
    [
        ([DialogueMessage("supporter", "")], "<response></response>", "ok", "unified"),  # an empty message, no reply
        ([], SCHEMA.example, "", "unified"),  # no dialogue, empty reference
        ([DialogueMessage("seeker", "🙂 ünïcode \x00")], "no format at all", "🙂", "unified"),  # odd characters
        ([DialogueMessage("seeker", "I feel sad.")], SCHEMA.example, None, "prm"),  # steps only, no reference
        ([DialogueMessage("seeker", "word " * 2000)], SCHEMA.example, "ok", "orm"),  # a very long message
    ],
)
def test_odd_inputs_get_parseable_answers(
    model: tuple[JudgeModel, StandInEncoder],
    history: list[DialogueMessage],
    candidate: str,
    reference: str | None,
    mode: str,
) -> None:
    judge, _ = model
    t = task(history, candidate, reference, mode)
    (answers,) = judge.answer([t])
    assert len(answers) == len(t.turns)
    assert judge_outcome(t, answers).status == "ok"


def test_cache_overflow_keeps_the_texts_of_the_batch(model: tuple[JudgeModel, StandInEncoder]) -> None:
    judge, encoder = model  # the cache holds 6 embeddings
    first = task([DialogueMessage("seeker", f"message {i}") for i in range(4)], SCHEMA.example, "reference one")
    judge.answer([first])
    seen = encoder.embedded
    judge.answer([first])
    assert encoder.embedded == seen  # everything was cached
    # shares two messages with the first task and brings four new texts: the cache overflows
    second = task([DialogueMessage("seeker", f"message {i}") for i in range(2, 6)], SCHEMA.example, "reference two")
    (answers,) = judge.answer([second])
    assert judge_outcome(second, answers).status == "ok"


def test_verdicts_are_structured_with_the_heads_probabilities(model: tuple[JudgeModel, StandInEncoder]) -> None:
    judge, _ = model
    t = task([DialogueMessage("seeker", "I lost my job and I can't sleep.")], SCHEMA.example, "That sounds hard.")
    (verdicts,) = judge.answer([t])
    *steps, preference = verdicts
    assert all(isinstance(s, StepJudgment) for s in steps) and isinstance(preference, PreferenceJudgment)
    for step in steps:
        # the verdict is built, not read back from the text; the text still says the same for judgments.raw
        assert step.status == "ok" and parse_step_judgment(step.text).verdict is step.verdict
    checked = [s for s in steps if s.p_correct is not None]  # every COMPEER step names a field the heads check
    assert len(checked) == len(steps) and all(0.0 <= s.p_correct <= 1.0 for s in checked)  # type: ignore[operator]
    probabilities = preference.probabilities
    assert probabilities is not None and set(probabilities) == {"first", "second", "equal", "neither"}
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert preference.preference == max(probabilities, key=probabilities.__getitem__)
    assert parse_preference(preference.text).preference == preference.preference


def test_a_missing_reply_loses_by_rule_without_a_probability(model: tuple[JudgeModel, StandInEncoder]) -> None:
    judge, _ = model
    t = task([DialogueMessage("seeker", "Hi.")], "<response></response>", "Hello.", "orm")
    ((preference,),) = judge.answer([t])
    assert isinstance(preference, PreferenceJudgment)
    assert preference.preference == "first" and preference.probabilities is None
