"""The ``classifier`` backend: the CPU judge (frozen MiniLM embeddings + small trained heads).

It answers every turn of a task with a structured verdict carrying the heads' probabilities (``p_correct``
of a step, the preference's distribution over the four options), and a text written as a generative
judge would (a rationale with the heads' numbers, then ``Verdict:``/``Preference:``) for
``judgments.raw``; nothing is parsed back from that text. The
model work is blocking numpy/torch code and runs in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from reward_server.backends.base import BackendError, JudgeReply
from services.core.judge_prompts import JudgeTask

log = logging.getLogger(__name__)
DEFAULT_ARTIFACT = Path(__file__).resolve().parent.parent / "artifacts" / "judge-classifier-v2.npz"
_WARMUP = (
    "<history_analysis>\nStage: exploration\nThe seeker lost a job.\n</history_analysis>\n"
    "<emotional_state>\nSentiment: negative\nEmotion: anxiety\nIntensity: 4\nWorried.\n</emotional_state>\n"
    "<support_strategy>\nStrategy: Question\nAsk more.\n</support_strategy>\n<response>\nWhat happened?\n</response>"
)


class ClassifierJudge:
    """The ``classifier`` backend.

    Args:
        artifact: the trained heads (``.npz``); the committed ``judge-classifier-v2.npz`` when None.
        encoder: a sentence-transformers model directory; the packaged all-MiniLM-L6-v2 when None.
        device: torch device of the encoder.
        max_batch_size: tasks per call the micro-batcher should send.
    """

    name = "classifier"
    max_concurrent_batches = 1  # one encoder: batches would only compete for the same cores

    def __init__(
        self, artifact: Path | None = None, encoder: str | None = None, device: str = "cpu", max_batch_size: int = 32
    ) -> None:
        self.artifact_path = Path(artifact) if artifact else DEFAULT_ARTIFACT
        self.encoder = encoder
        self.device = device
        self.max_batch_size = max_batch_size
        self.model = "unifireward-esc-classifier-v2"
        self._judge: object | None = None

    def _load(self) -> None:
        from reward_server.judge_model.encoder import embed_texts, load_encoder
        from reward_server.judge_model.heads import Artifact
        from reward_server.judge_model.judge import JudgeModel
        from services.models.sentence_encoder import embedding_dimension

        artifact = Artifact.load(self.artifact_path)
        encoder = load_encoder(self.encoder, self.device)
        dim = embedding_dimension(encoder)
        if dim != int(artifact.meta["dim"]):
            raise BackendError(f"encoder gives {dim}-d embeddings but the artifact expects {artifact.meta['dim']}")
        self.model = str(artifact.meta.get("model", self.model))
        self._judge = JudgeModel(artifact, lambda texts: embed_texts(encoder, texts))
        self._warm_up()

    def _warm_up(self) -> None:
        from services.core.candidate import parse_candidate
        from services.core.judge_prompts import build_task
        from services.core.schemas import SCHEMAS
        from services.core.types import DialogueMessage

        schema = SCHEMAS["compeer"]
        task = build_task(
            schema,
            "unified",
            [DialogueMessage("seeker", "I lost my job today.")],
            parse_candidate(_WARMUP, schema),
            "Oh no.",
        )
        self._answer([task])

    def _answer(self, tasks: Sequence[JudgeTask]) -> list[JudgeReply]:
        from reward_server.judge_model.judge import JudgeModel

        if not isinstance(self._judge, JudgeModel):
            raise BackendError("the classifier judge is not started")
        return [JudgeReply(verdicts=verdicts) for verdicts in self._judge.answer(tasks)]

    async def start(self) -> None:
        """Load the artifact and the encoder, then judge one task to warm up."""
        try:
            await asyncio.to_thread(self._load)
        except BackendError:
            raise
        except (OSError, KeyError, ValueError) as exc:
            raise BackendError(f"cannot load the classifier judge: {exc}") from exc
        log.info("classifier judge ready: %s", self.model)

    async def close(self) -> None:
        """Drop the model."""
        self._judge = None

    def healthy(self) -> bool:
        """Always: an in-process model has no engine to lose (a failed batch fails alone)."""
        return True

    async def judge(self, tasks: Sequence[JudgeTask]) -> list[JudgeReply]:
        """Answer every turn of every task (in a worker thread)."""
        if not tasks:
            return []
        try:
            return await asyncio.to_thread(self._answer, list(tasks))
        except BackendError:
            raise
        except (RuntimeError, ValueError, KeyError) as exc:
            raise BackendError(f"classifier judge failed: {exc}") from exc
