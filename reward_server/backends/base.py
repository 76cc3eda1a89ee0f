"""The judge backend protocol.

A backend answers the turns of :class:`~services.core.judge_prompts.JudgeTask` objects with structured
verdicts (:data:`~services.core.judgments.Judgment`: a step's verdict or the reply preference, with the
probabilities the backend has, and the text kept for ``judgments.raw``). It is created by the app's
lifespan, ``start``-ed (loaded and warmed), called with batches of tasks gathered by the micro-batcher,
and ``close``-d on shutdown. Generative backends answer the turns of a task as one conversation and
read each answer once (:mod:`services.core.judgments`); the CPU classifier builds its verdicts directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from services.core.judge_prompts import JudgeTask
from services.core.judgments import Judgment


class BackendError(RuntimeError):
    """The backend failed on a batch; the service answers those items with ``backend_error``."""


class BackendDeadError(BackendError):
    """The backend can no longer work (its engine died); from now on ``healthy()`` is False."""


@dataclass
class JudgeReply:
    """A backend's answers to one task.

    Attributes:
        verdicts: one judgment per turn of the task, in order.
        prompt_tokens: tokens read, when the backend counts them.
        completion_tokens: tokens written, when the backend counts them.
        cached_tokens: prompt tokens served from the engine's prefix cache, when it says.
        error: set when this task failed alone (the other tasks of the batch stand).
    """

    verdicts: list[Judgment]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> JudgeReply:
        """The reply of a task that failed alone (the other tasks of the batch stand)."""
        return cls(verdicts=[], error=error)

    @property
    def raw(self) -> list[str]:
        """What the judge wrote for each turn, in order."""
        return [verdict.text for verdict in self.verdicts]


@runtime_checkable
class JudgeBackend(Protocol):
    """What the reward service needs from a judge."""

    #: Backend kind (``classifier``, ``fake``, ``vllm``, ``openai``).
    name: str
    #: Model id reported by ``/v1/models`` and in every judge response.
    model: str
    #: Tasks per call the backend handles well; the micro-batcher closes batches at this size.
    max_batch_size: int
    #: Calls the backend may serve at once: 1 for a model on one device, more for an engine with its
    #: own scheduler (vLLM's continuous batching, a remote server) that should see many tasks at once.
    max_concurrent_batches: int

    async def start(self) -> None:
        """Load and warm up; after it returns the service is ready."""

    async def close(self) -> None:
        """Release the model and any connections."""

    def healthy(self) -> bool:
        """False once the backend can no longer judge (a dead engine), so ``/ready`` fails and work is
        refused with 503 rather than answered with fallback rewards; True otherwise (also before ``start``)."""

    async def judge(self, tasks: Sequence[JudgeTask]) -> list[JudgeReply]:
        """Answer every turn of every task.

        Args:
            tasks: the batch, in order.

        Returns:
            One reply per task, in the same order.

        Raises:
            BackendError: the whole batch failed.
        """
