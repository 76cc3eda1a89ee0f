"""The real classifier judge: committed artifact + packaged MiniLM on derived ESConv test items."""

from __future__ import annotations

from pathlib import Path

import pytest

from reward_server.backends.base import JudgeBackend
from reward_server.backends.classifier import DEFAULT_ARTIFACT, ClassifierJudge
from services.core.candidate import parse_candidate
from services.core.judge_prompts import build_task
from services.core.outcome import judge_outcome
from services.core.schemas import SCHEMAS
from services.core.types import DialogueMessage
from services.data.cer_data import derive_split
from services.data.esconv import load_split

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "esconv" / "esconv_test.jsonl"


@pytest.fixture(scope="module")
def items() -> list[dict[str, object]]:
    if not DATA.exists():
        pytest.skip("ESConv is not available at ../shared/data/esconv")
    return derive_split(load_split(DATA)[:15], "test", rounds_per_dialogue=2, seed=0)


def _tasks(items: list[dict[str, object]], mode: str = "unified") -> list[object]:
    schema = SCHEMAS["compeer"]
    return [
        build_task(
            schema,
            mode,  # type: ignore[arg-type]
            [DialogueMessage(m["role"], m["content"]) for m in r["history"]],  # type: ignore[index, union-attr]
            parse_candidate(str(r["candidate"]), schema),
            str(r["reference"]),
        )
        for r in items
    ]


async def test_judges_derived_items(items: list[dict[str, object]]) -> None:
    assert DEFAULT_ARTIFACT.stat().st_size <= 5_000_000
    judge = ClassifierJudge(max_batch_size=16)
    assert isinstance(judge, JudgeBackend)
    await judge.start()
    try:
        tasks = _tasks(items)
        replies = await judge.judge(tasks)  # type: ignore[arg-type]
        prm = await judge.judge(_tasks(items[:3], "prm"))  # type: ignore[arg-type]
    finally:
        await judge.close()
    assert judge.model.startswith("unifireward-esc-classifier")
    assert len(replies) == len(tasks)
    positive = []
    for record, task, reply in zip(items, tasks, replies, strict=True):
        assert reply.error is None
        assert len(reply.raw) == len(task.turns)  # type: ignore[attr-defined]
        assessment = judge_outcome(task, reply.verdicts)  # type: ignore[arg-type]
        assert assessment.status == "ok", (assessment.errors, reply.raw)
        assert all("(" in a and ")" in a for a in reply.raw)  # rationales carry the numbers
        if record["corruption"] == "gold":
            positive += [bool(s.verdict) for s in assessment.steps]
    assert sum(positive) / len(positive) >= 0.7  # gold steps are mostly accepted (0.83 per step on all of test)
    assert all(len(r.raw) == 3 for r in prm)  # prm: steps only, no reference needed


async def test_unknown_artifact_fails_to_start(tmp_path: Path) -> None:
    from reward_server.backends.base import BackendError

    judge = ClassifierJudge(artifact=tmp_path / "missing.npz")
    with pytest.raises(BackendError):
        await judge.start()
