"""The ``openai`` backend: a generative judge behind any OpenAI-compatible chat-completions server.

The same conversation as the ``vllm`` backend (:mod:`.conversation`), sent as ``POST /chat/completions``
requests: vLLM's OpenAI server, SGLang or a hosted model. With structured outputs on, each request
carries vLLM's ``"structured_outputs": {"regex": ...}`` field (current vLLM silently ignores the older
``guided_*`` fields; servers that know neither should run with ``REWARD_STRUCTURED_OUTPUTS=false``),
and asks for ``"logprobs": true, "top_logprobs": k`` (``REWARD_TOP_LOGPROBS``): the alternatives of
the token that writes the verdict give the judge's probability of each option
(:mod:`services.core.verdict_probabilities`). A server that answers without them, or with ones that
cannot be read, gives judgments without probabilities; one that refuses the fields needs
``REWARD_TOP_LOGPROBS=0``.

The requests go through the services' one HTTP client (:class:`services.contracts.clients.ServiceClient`): one
long-lived ``httpx.AsyncClient``, explicit timeouts, at most ``max_concurrency`` requests in flight,
and retries with exponential backoff only where retrying is safe and useful: 429, 503, failures to
connect and pooled connections the server had closed. Anything else (another status, a read timeout,
a malformed answer) fails that candidate alone with ``backend_error``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import httpx
from pydantic import BaseModel, Field, SecretStr, ValidationError

from reward_server.backends.base import BackendError, JudgeReply
from reward_server.backends.conversation import (
    Completion,
    JudgeSampling,
    Messages,
    TurnError,
    judge_tasks,
    warm_up_task,
)
from reward_server.settings import RewardSettings
from services.contracts.clients import RETRY_STATUSES, ServiceClient, ServiceResponseError, ServiceUnreachableError
from services.core.judge_prompts import JudgeTask
from services.core.verdict_probabilities import Alternative, TokenPosition

logger = logging.getLogger(__name__)


class _PromptDetails(BaseModel):
    cached_tokens: int | None = None


class _Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: _PromptDetails | None = None


class _Message(BaseModel):
    content: str | None = None


class _TopLogprob(BaseModel):
    token: str
    logprob: float


class _TokenLogprob(BaseModel):
    token: str
    logprob: float | None = None
    top_logprobs: list[_TopLogprob] = Field(default_factory=list)


class _ChoiceLogprobs(BaseModel):
    content: list[_TokenLogprob] | None = None


class _Choice(BaseModel):
    message: _Message
    finish_reason: str | None = None
    # Read on its own (answer_positions): log-probabilities a server got wrong never fail the answer.
    logprobs: Any = None


class ChatCompletion(BaseModel):
    """The part of a chat-completions answer the judge reads."""

    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None


def answer_positions(logprobs: Any) -> list[TokenPosition] | None:
    """A choice's ``logprobs`` as :func:`~services.core.verdict_probabilities.option_probabilities`
    reads them: the positions from the last one that writes a line break, each its token and its top
    alternatives (the token itself added when the server left it out of them; none when the server
    sent no top alternatives).

    Args:
        logprobs: the choice's ``logprobs`` field as the server sent it.

    Returns:
        The positions, or None when the server sent none or sent something else.

    >>> content = [{"token": ".\\n", "logprob": 0.0}, {"token": " B", "logprob": -0.1,
    ...            "top_logprobs": [{"token": " A", "logprob": -2.4}]}]
    >>> answer_positions({"content": content})[-1]
    (' B', [(' A', -2.4), (' B', -0.1)])
    >>> answer_positions(None), answer_positions({"content": "?"})
    (None, None)
    """
    if logprobs is None:
        return None
    try:
        content = _ChoiceLogprobs.model_validate(logprobs).content
    except ValidationError:
        logger.debug("the judge server's logprobs cannot be read; the judgment gets no probabilities")
        return None
    if not content:
        return None
    first = max((i for i, entry in enumerate(content) if "\n" in entry.token), default=0)
    positions: list[TokenPosition] = []
    for entry in content[first:]:
        alternatives: list[Alternative] = [(top.token, top.logprob) for top in entry.top_logprobs]
        # Without top_logprobs there is no distribution to read, only the written token's probability.
        if alternatives and entry.logprob is not None and all(text != entry.token for text, _ in alternatives):
            alternatives.append((entry.token, entry.logprob))
        positions.append((entry.token, alternatives))
    return positions


class OpenAIJudge:
    """The ``openai`` backend.

    Args:
        base_url: the server up to ``/v1``.
        model: the model name the server serves.
        sampling: how each judge turn is sampled.
        api_key: bearer key, if the server needs one.
        max_concurrency: most requests in flight.
        timeout_s: read timeout of one request.
        connect_timeout_s: connect timeout.
        max_retries: retries after a retryable failure.
        backoff_s: first backoff; it doubles with each retry up to ``max_backoff_s``.
        max_backoff_s: longest backoff.
        transport: an httpx transport (tests); the network when None.
        concurrency: candidates judged at once (their requests still wait for ``max_concurrency``).
    """

    name = "openai"
    #: One task per call, as for ``vllm``: the server batches; a batch would only add waiting.
    max_batch_size = 1

    def __init__(
        self,
        base_url: str,
        model: str,
        sampling: JudgeSampling | None = None,
        *,
        api_key: SecretStr | None = None,
        max_concurrency: int = 64,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        transport: httpx.AsyncBaseTransport | None = None,
        concurrency: int = 256,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.sampling = sampling or JudgeSampling()
        self.max_concurrent_batches = concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._api_key = api_key
        self._timeouts = timeout_s, connect_timeout_s
        self._max_concurrency = max_concurrency
        self._transport = transport
        self._slots = asyncio.Semaphore(max_concurrency)
        self._client: ServiceClient | None = None

    @classmethod
    def from_settings(cls, settings: RewardSettings, sampling: JudgeSampling) -> OpenAIJudge:
        """The backend the settings describe (``openai_*`` fields, ``model``, batching)."""
        if not settings.openai.base_url or not settings.model:
            raise ValueError("the openai backend needs REWARD_OPENAI_BASE_URL and REWARD_MODEL")
        return cls(
            settings.openai.base_url,
            settings.model,
            sampling,
            api_key=settings.openai.api_key,
            max_concurrency=settings.openai.max_concurrency,
            timeout_s=settings.openai.timeout_s,
            connect_timeout_s=settings.openai.connect_timeout_s,
            max_retries=settings.openai.max_retries,
            concurrency=settings.sampling.judge_concurrency,
        )

    async def start(self) -> None:
        """Open the client and judge one task, so the service is ready only once the server answers.

        Raises:
            BackendError: the server did not answer the warm-up task.
        """
        if self._client is None:
            self._client = ServiceClient(
                self.base_url,
                api_key=self._api_key.get_secret_value() if self._api_key else None,
                timeout_s=self._timeouts[0],
                connect_timeout_s=self._timeouts[1],
                retries=self.max_retries,
                backoff_s=self.backoff_s,
                max_backoff_s=self.max_backoff_s,
                max_connections=self._max_concurrency,
                transport=self._transport,
            )
        (reply,) = await self.judge([warm_up_task()])
        if reply.error is not None:
            raise BackendError(f"the judge server at {self.base_url} failed the warm-up: {reply.error}")
        logger.info("openai judge ready: %s at %s", self.model, self.base_url)

    def healthy(self) -> bool:
        """Always: the remote server's outages are per-request errors (retried, then ``backend_error``)."""
        return True

    async def close(self) -> None:
        """Close the client and its connections."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _body(self, messages: Messages, regex: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.sampling.temperature,
            "max_tokens": self.sampling.max_tokens,
        }
        if self.sampling.seed is not None:
            body["seed"] = self.sampling.seed
        if regex is not None:
            body["structured_outputs"] = {"regex": regex}
        top_logprobs = self.sampling.logprobs(regex)
        if top_logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = top_logprobs
        return body

    async def complete(self, messages: Messages, regex: str | None = None) -> Completion:
        """Answer one chat with the judge's sampling (and ``regex``, when given).

        Raises:
            TurnError: the request failed (after the retries that apply).
            BackendError: the backend is not started.
        """
        client = self._client
        if client is None:
            raise BackendError("the openai backend is not started")
        async with self._slots:
            try:
                response = await client.request("POST", "/chat/completions", self._body(messages, regex))
            except ServiceResponseError as exc:
                retried = f" after {self.max_retries + 1} attempts" if exc.status in RETRY_STATUSES else ""
                raise TurnError(f"the judge server answered {exc.status}{retried}: {exc.message[:300]}") from exc
            except ServiceUnreachableError as exc:
                if isinstance(exc.__cause__, httpx.TimeoutException) and not isinstance(
                    exc.__cause__, httpx.ConnectTimeout
                ):
                    raise TurnError(f"the judge server timed out ({type(exc.__cause__).__name__})") from exc
                raise TurnError(f"cannot reach the judge server: {exc}") from exc
            except httpx.HTTPError as exc:
                raise TurnError(f"the judge server's answer failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise TurnError(f"the judge server answered {response.status_code}: {response.text[:300]}")
        try:
            answer = ChatCompletion.model_validate_json(response.content)
        except ValidationError as exc:
            first = str(exc.errors(include_input=False, include_url=False)[:1])[:300]
            raise TurnError(f"the judge server's answer is not a chat completion: {first}") from exc
        usage = answer.usage or _Usage()
        cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else None
        choice = answer.choices[0]
        return Completion(
            choice.message.content or "",
            usage.prompt_tokens,
            usage.completion_tokens,
            cached or 0,
            answer_positions(choice.logprobs),
        )

    async def judge(self, tasks: Sequence[JudgeTask]) -> list[JudgeReply]:
        """Answer every turn of every task; one concurrent conversation per task.

        Raises:
            BackendError: the backend is not started.
        """
        if self._client is None:
            raise BackendError("the openai backend is not started")
        return await judge_tasks(self.complete, tasks, self.sampling)
