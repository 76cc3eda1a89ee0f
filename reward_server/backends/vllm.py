"""The ``vllm`` backend: a generative judge on a vLLM engine inside the service process.

The engine is vLLM's ``AsyncLLM`` on any local Hugging Face causal LM (``REWARD_MODEL``), prompted with
the model's own chat template. Each candidate is one conversation (:mod:`.conversation`): its turns
extend each other, so prefix caching computes the dialogue once, and the conversations of a batch are
concurrent coroutines over ``AsyncLLM.generate``, which vLLM's continuous batching mixes step by step.
With structured outputs each turn is constrained to its regex (vLLM's ``StructuredOutputsParams``), so
every judgment parses, and each turn asks for the top log-probabilities of its tokens (``logprobs=k``,
``REWARD_TOP_LOGPROBS``): the ones at the token that writes the verdict give the judge's probability of
each option (:mod:`services.core.verdict_probabilities`). The engine computes them in vLLM's
``raw_logprobs`` mode, from the logits after the grammar's mask and before temperature or penalties, so
they are the model's own probabilities renormalised over what the regex allows.

vLLM is imported when the backend starts, never at import time: the service runs without it. The same
code serves a GPU node (``pip install '.[vllm]'``) and a CPU machine (``make install-vllm``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from reward_server.backends.base import BackendDeadError, BackendError, JudgeReply
from reward_server.backends.conversation import (
    Completion,
    JudgeSampling,
    Messages,
    TurnError,
    judge_tasks,
    warm_up_task,
)
from reward_server.settings import RewardSettings
from services.core.judge_prompts import JudgeTask
from services.core.verdict_probabilities import Alternative, TokenPosition

logger = logging.getLogger(__name__)

#: Log-probabilities of the masked logits, before temperature and penalties: the model's own probability
#: of each legal token (the default of vLLM; set so that a change of default cannot change the rewards).
LOGPROBS_MODE = "raw_logprobs"
#: The most tokens read back from the end of an answer to find its last line (a structured judgment's
#: is at most 15 bytes, "\nVerdict: False", so at most 15 tokens and the end-of-sequence token).
ANSWER_TAIL_TOKENS = 64


def engine_args(settings: RewardSettings) -> dict[str, Any]:
    """The keyword arguments of vLLM's ``AsyncEngineArgs`` that the settings describe.

    >>> args = engine_args(RewardSettings(_env_file=None, backend="vllm", model="/models/judge"))
    >>> args["model"], args["enable_prefix_caching"], "kv_cache_memory_bytes" in args
    ('/models/judge', True, False)
    """
    args: dict[str, Any] = {
        "model": settings.model,
        "tensor_parallel_size": settings.engine.tensor_parallel_size,
        "gpu_memory_utilization": settings.engine.gpu_memory_utilization,
        "dtype": settings.engine.dtype,
        "enable_prefix_caching": settings.engine.enable_prefix_caching,
        "enforce_eager": settings.engine.enforce_eager,
        "disable_log_stats": True,
    }
    optional = {
        "max_model_len": settings.engine.max_model_len,
        "kv_cache_memory_bytes": settings.engine.kv_cache_memory_bytes,
        "max_num_seqs": settings.engine.max_num_seqs,
        "block_size": settings.engine.block_size,
        "seed": settings.sampling.seed,
    }
    args.update({name: value for name, value in optional.items() if value is not None})
    return args


class _Alternatives:
    """The alternatives at one generated position, decoded when read (most positions never are)."""

    def __init__(self, entries: Mapping[int, Any], decode: Callable[[list[int]], list[str]]) -> None:
        self._entries = entries
        self._decode = decode

    def __iter__(self) -> Iterator[Alternative]:
        ids = list(self._entries)
        for token_id, text in zip(ids, self._decode(ids), strict=True):
            yield text, float(self._entries[token_id].logprob)


def answer_positions(
    token_ids: Sequence[int],
    logprobs: Sequence[Mapping[int, Any] | None],
    decode: Callable[[list[int]], list[str]],
    tail: int = ANSWER_TAIL_TOKENS,
) -> list[TokenPosition]:
    """The last line of an answer as :func:`~services.core.verdict_probabilities.option_probabilities`
    reads it: from the last token that writes a line break (at most ``tail`` tokens back) to the end.

    Args:
        token_ids: the tokens generated.
        logprobs: vLLM's log-probabilities per generated token (``token id -> Logprob``, the written
            token and the top ``k``).
        decode: token ids to their texts, one text per id.
        tail: most tokens read back.

    Returns:
        Each position's text and its alternatives (decoded only when read); empty when vLLM
        returned fewer positions than tokens.

    >>> from types import SimpleNamespace as Logprob
    >>> texts = {1: "Fine", 2: ".\\n", 3: "Verdict", 4: ":", 5: " True", 6: " False"}
    >>> tops = [{i: Logprob(logprob=0.0)} for i in (1, 2, 3, 4)]
    >>> tops.append({5: Logprob(logprob=-0.1), 6: Logprob(logprob=-2.4)})
    >>> last = answer_positions([1, 2, 3, 4, 5], tops, lambda ids: [texts[i] for i in ids])
    >>> [text for text, _ in last], list(last[-1][1])
    (['.\\n', 'Verdict', ':', ' True'], [(' True', -0.1), (' False', -2.4)])
    """
    if len(logprobs) < len(token_ids):
        return []
    first = len(token_ids)
    texts: list[str] = []
    while first > 0 and len(texts) < tail:
        first -= 1
        (text,) = decode([token_ids[first]])
        texts.insert(0, text)
        if "\n" in text:
            break
    return [(text, _Alternatives(logprobs[first + i] or {}, decode)) for i, text in enumerate(texts)]


class VLLMJudge:
    """The ``vllm`` backend.

    Args:
        args: ``AsyncEngineArgs`` keyword arguments (:func:`engine_args`); ``model`` is required.
        sampling: how each judge turn is sampled.
        concurrency: candidates judged at once; the engine schedules all their turns together.
    """

    name = "vllm"
    #: One task per call: the engine batches the turns of every conversation in flight, while a batch
    #: of the micro-batcher would make each candidate wait for the slowest of its batch.
    max_batch_size = 1

    def __init__(
        self,
        args: dict[str, Any],
        sampling: JudgeSampling | None = None,
        *,
        concurrency: int = 256,
    ) -> None:
        if not args.get("model"):
            raise ValueError("the vllm backend needs a model directory")
        self.args = dict(args)
        self.model = str(args["model"])
        self.sampling = sampling or JudgeSampling()
        self.max_concurrent_batches = concurrency
        self._engine: Any = None  # vllm.v1.engine.async_llm.AsyncLLM, typed loosely: vLLM is optional
        self._dead = False

    def _build_engine(self) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        # Kept on self, never in a local or a return value: importing vLLM keeps the importing
        # thread's frames alive (a closure captures them), and a frame holding the engine would keep
        # it past close() until interpreter exit, where its __del__ fails.
        self._engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**{"logprobs_mode": LOGPROBS_MODE, **self.args}))

    async def start(self) -> None:
        """Start the engine (in a worker thread: it loads the model and spawns the engine core), then
        judge one task to warm up.

        Raises:
            BackendError: vLLM is not installed, or the engine cannot start.
        """
        # Every regex this engine sees is the judge's own: fixed and linear (a bounded character class,
        # then a literal line). vLLM's guard against hostile ones compiles each request's regex anew in
        # a fresh thread while the event loop waits, about 3 ms a turn on 2 CPU cores. Kept if set.
        os.environ.setdefault("VLLM_REGEX_COMPILATION_TIMEOUT_S", "0")
        try:
            await asyncio.to_thread(self._build_engine)
        except ImportError as exc:
            raise BackendError("the vllm backend needs vLLM: pip install '.[vllm]' (GPU) or make install-vllm") from exc
        except (OSError, ValueError, RuntimeError) as exc:
            raise BackendError(f"cannot start the vLLM engine on {self.model}: {exc}") from exc
        try:
            (reply,) = await self.judge([warm_up_task()])
        except BaseException:
            await self.close()
            raise
        if reply.error is not None:
            await self.close()
            raise BackendError(f"the vLLM engine failed its warm-up: {reply.error}")
        logger.info("vllm judge ready: %s (%s)", self.model, reply.raw[-1].splitlines()[-1])

    def healthy(self) -> bool:
        """False once the engine died (an ``EngineDeadError``, or the engine reports itself errored)."""
        if self._dead:
            return False
        engine = self._engine
        return engine is None or not bool(getattr(engine, "errored", False))

    async def close(self) -> None:
        """Shut the engine down (its engine-core process included)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            # On the event loop, like vLLM's own server: its output handler is cancelled before it can
            # report the engine core's exit as a failure. Requests have stopped by now (the service
            # closes its batcher first), so the few seconds it blocks cost nothing.
            engine.shutdown()
            del engine
            gc.collect()  # AsyncLLM sits in reference cycles: free it now, not at interpreter exit

    def _sampling_params(self, regex: str | None) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        return SamplingParams(
            temperature=self.sampling.temperature,
            seed=self.sampling.seed,
            max_tokens=self.sampling.max_tokens,
            structured_outputs=StructuredOutputsParams(regex=regex) if regex is not None else None,
            # No per-token outputs and no incremental detokenizing: the answer is decoded once, at
            # the end (_generate). Both cost this process CPU per generated token. For the same reason
            # the log-probabilities come flat (a few lists per request, not objects per token) and
            # undecoded: only the answer's last line is decoded (answer_positions).
            output_kind=RequestOutputKind.FINAL_ONLY,
            detokenize=False,
            logprobs=self.sampling.logprobs(regex),
            flat_logprobs=True,
        )

    async def _generate(self, messages: Messages, regex: str | None) -> Completion:
        from vllm.renderers.params import ChatParams

        engine = self._engine
        if engine is None:
            raise BackendError("the vllm backend is not started")
        chat = ChatParams(chat_template_kwargs={"add_generation_prompt": True})
        _, (prompt,) = await engine.renderer.render_chat_async([messages], chat)
        final = None
        async for output in engine.generate(prompt, self._sampling_params(regex), uuid.uuid4().hex):
            final = output
        if final is None or not final.outputs:
            raise TurnError("vLLM finished the request without an answer")
        answer = final.outputs[0]
        if answer.finish_reason == "length":
            logger.warning("a judge turn hit max_tokens (%d) or the context length", self.sampling.max_tokens)
        tokenizer = engine.renderer.get_tokenizer()
        text = tokenizer.decode(answer.token_ids, skip_special_tokens=True)
        tokens = None
        if answer.logprobs is not None:
            from vllm.tokenizers.detokenizer_utils import convert_ids_list_to_tokens

            tokens = answer_positions(
                answer.token_ids, answer.logprobs, lambda ids: convert_ids_list_to_tokens(tokenizer, ids)
            )
        return Completion(
            text, len(final.prompt_token_ids or ()), len(answer.token_ids), final.num_cached_tokens or 0, tokens
        )

    async def complete(self, messages: Messages, regex: str | None = None) -> Completion:
        """Answer one chat with the judge's sampling (and ``regex``, when given).

        Raises:
            TurnError: vLLM rejected or failed this request.
            BackendError: the engine is not started or died.
        """
        from vllm.exceptions import VLLMError
        from vllm.v1.engine.exceptions import EngineDeadError

        try:
            return await self._generate(messages, regex)
        except EngineDeadError as exc:
            if not self._dead:
                logger.error("the vLLM engine died: the service reports itself unhealthy (/ready 503)")
            self._dead = True
            raise BackendDeadError("the vLLM engine died; see the log") from exc
        except (VLLMError, ValueError) as exc:  # a rejected request (too long a prompt...) or a failed one
            raise TurnError(f"vLLM could not answer: {exc}") from exc

    async def judge(self, tasks: Sequence[JudgeTask]) -> list[JudgeReply]:
        """Answer every turn of every task; one concurrent conversation per task.

        Raises:
            BackendError: the engine is not started or died.
        """
        if self._engine is None:
            raise BackendError("the vllm backend is not started")
        return await judge_tasks(self.complete, tasks, self.sampling)

    async def reset_prefix_cache(self) -> None:
        """Forget every cached prefix (benchmarks compare cold runs; also after changing weights)."""
        if self._engine is None:
            raise BackendError("the vllm backend is not started")
        await self._engine.reset_prefix_cache()
