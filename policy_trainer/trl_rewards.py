"""A reward function for TRL's ``GRPOTrainer`` that scores whole GRPO groups through the reward service.

TRL (pinned in the ``train`` extra) calls each reward function once per generation batch, with the whole
batch as keyword lists of one value per completion::

    reward(prompts=[...], completions=[...], completion_ids=[...], trainer_state=..., log_metric=...,
           log_extra=..., **one_list_per_dataset_column) -> list[float | None]

The ``num_generations`` completions of a prompt are consecutive. :class:`ServiceReward` groups them back
into GRPO groups, sends every group of the batch in one ``POST /v1/rewards`` call (one per schema and mode,
which for one dataset is one call) with ``invalid_groups: "report"``, and returns each completion's
reweighted ``reward`` as the service gave it.

The dialogue a completion answers comes from the dataset's columns (``docs/training.md``, "TRL"):

``label``
    the OpenRLHF prompt rows' column: a :class:`~services.contracts.openrlhf.PromptLabel` as a JSON string
    or an object (``group_id``, ``schema``, ``mode``, ``history``, ``reference``), so one prompt file serves
    both trainers.
``history``
    list of ``{"role": "seeker" | "supporter", "content": str}``, oldest first.
``reference``
    the gold supporter reply (needed by the ``unified`` and ``orm`` modes).
``schema``, ``mode``
    ``compeer`` | ``care`` and ``unified`` | ``prm`` | ``orm``; the function's defaults when absent.
``group_id``
    completions sharing it (and the same dialogue) form one group, wherever they sit in the batch.

A column given and not None wins over the label's field. Without a group id, a group is a run of
consecutive completions with the same prompt and dialogue (cut into runs of ``num_generations`` when the
function was given it).

Failures: a completion the service could not score (judge failure, group refused, service unreachable or
answering an error) and a completion whose own values are unusable (unreadable label, bad history, a
completion that is neither text nor chat messages) get ``fallback_reward`` (0.0 by default; None lets TRL
treat it as unscored). Each fallback is counted (:attr:`ServiceReward.fallbacks`, per reason in
:attr:`ServiceReward.fallback_reasons`), logged as a warning, and reported to TRL as the metric
``<name>/fallbacks`` (the batch's count). Only a call of the wrong shape raises :class:`ValueError`: a
column that is not a list of one value per completion, or a batch without any dialogue column (``label``,
``history`` or ``reference``), which would make every reward a fallback.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import httpx
from pydantic import TypeAdapter, ValidationError

from services.contracts.clients import ClientError, RewardClient, ServiceResponseError
from services.contracts.openrlhf import PromptLabel, parse_label
from services.contracts.reward import (
    MAX_MESSAGES,
    MAX_TEXT,
    GroupRewards,
    RedundancyOptions,
    RewardCandidate,
    RewardGroup,
    RewardsRequest,
)
from services.core.errors import ServiceError
from services.core.types import DialogueMessage, JudgeMode, SchemaName, Scoring

logger = logging.getLogger(__name__)

#: Dataset columns the reward function reads; every other column is left alone (bookkeeping).
CONTEXT_COLUMNS = ("label", "history", "reference", "schema", "mode", "group_id")
_HISTORY = TypeAdapter(list[DialogueMessage])
_MAX_ID = 256
FallbackReason = Literal["context", "completion", "service", "refused", "unjudged"]


class UnusableValueError(ValueError):
    """One completion's own values cannot be scored (it gets the fallback reward)."""


@dataclass(frozen=True)
class Context:
    """What a completion is judged against: its dialogue, reference, schema and mode."""

    schema_name: SchemaName
    mode: JudgeMode
    history: tuple[DialogueMessage, ...]
    reference: str | None
    group_id: str | None

    def digest(self) -> str:
        """A digest of everything but the group id: completions of one group must share it."""
        content = json.dumps(
            [self.schema_name, self.mode, [[m.role, m.content] for m in self.history], self.reference],
            ensure_ascii=False,
        )
        return hashlib.blake2b(content.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True)
class ScoredCompletion:
    """What the reward function returned for one completion, and why.

    Attributes:
        index: the completion's position in the batch.
        group_id: the id the group was sent under (None when the completion was not sent).
        text: the completion's text as sent to the service (None when it had none).
        reward: the reward returned to TRL (the fallback reward on fallback).
        service_reward: the reweighted reward the service answered; None on fallback.
        raw_reward: the service's judged reward before reweighting; None on fallback.
        fallback: the reason the fallback reward was used, or None.
    """

    index: int
    group_id: str | None
    text: str | None
    reward: float | None
    service_reward: float | None
    raw_reward: float | None
    fallback: FallbackReason | None


@dataclass
class _Group:
    id: str
    context: Context
    indices: list[int] = field(default_factory=list)


def completion_text(completion: object) -> str:
    """The text of a completion: a string, or TRL's conversational form (a list of messages).

    The contents of the assistant messages are joined by newlines (a list of content parts is read for its
    text parts).

    Raises:
        UnusableValueError: neither text nor messages with text.

    >>> completion_text("I hear you.")
    'I hear you.'
    >>> completion_text([{"role": "assistant", "content": "I hear you."}])
    'I hear you.'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and all(isinstance(m, Mapping) for m in completion):
        parts = []
        for message in cast(Sequence[Mapping[str, Any]], completion):
            if message.get("role", "assistant") != "assistant":
                continue
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts += [p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)]
            elif content is not None:
                raise UnusableValueError(f"an assistant message's content is a {type(content).__name__}")
        if parts:
            return "\n".join(parts)
    raise UnusableValueError(f"a completion must be text or assistant messages, not {type(completion).__name__}")


def _literal(value: object, allowed: tuple[str, ...], column: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise UnusableValueError(f"{column} must be one of {', '.join(allowed)}, not {value!r:.80}")
    return value


def completion_context(
    columns: Mapping[str, Sequence[object]], index: int, schema_name: SchemaName, mode: JudgeMode
) -> Context:
    """A completion's context from its row's columns: each column (when not None) over the label's field.

    Raises:
        UnusableValueError: the label is unreadable, or a column's value is not what it must be.
    """

    def value(column: str) -> object:
        values = columns.get(column)
        return None if values is None else values[index]

    label: PromptLabel | None = None
    if (raw_label := value("label")) is not None:
        try:
            label = parse_label(raw_label, param="label")
        except ServiceError as exc:
            raise UnusableValueError(str(exc)) from exc
    schema_value, mode_value, history_value = value("schema"), value("mode"), value("history")
    reference_value, group_value = value("reference"), value("group_id")
    if schema_value is not None:
        schema = cast(SchemaName, _literal(schema_value, get_args(SchemaName), "schema"))
    else:
        schema = label.schema_name if label is not None else schema_name
    if mode_value is not None:
        judge_mode = cast(JudgeMode, _literal(mode_value, get_args(JudgeMode), "mode"))
    else:
        judge_mode = label.mode if label is not None else mode
    if history_value is not None:
        if isinstance(history_value, Sized) and len(history_value) > MAX_MESSAGES:
            raise UnusableValueError(f"history has more than {MAX_MESSAGES} messages")
        try:
            history = _HISTORY.validate_python(history_value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise UnusableValueError(f"history[{where}]: {first['msg']}") from exc
    else:
        history = list(label.history) if label is not None else []
    if reference_value is not None:
        if not isinstance(reference_value, str) or len(reference_value) > MAX_TEXT:
            raise UnusableValueError(f"reference must be text of at most {MAX_TEXT} characters")
        reference: str | None = reference_value
    else:
        reference = label.reference if label is not None else None
    if group_value is not None:
        if not isinstance(group_value, str | int) or isinstance(group_value, bool) or str(group_value) == "":
            raise UnusableValueError(f"group_id must be a non-empty text or an int, not {group_value!r:.80}")
        group_id: str | None = str(group_value)
    else:
        group_id = label.group_id if label is not None else None
    return Context(schema, judge_mode, tuple(history), reference, group_id)


def _wire_id(group_id: str, used: set[str]) -> str:
    """A group id the service accepts (at most 256 characters) and unique in the request."""
    wire = (
        group_id
        if len(group_id) <= _MAX_ID - 20
        else group_id[:200] + "~" + hashlib.sha256(group_id.encode()).hexdigest()[:16]
    )
    candidate, k = wire, 1
    while candidate in used:
        candidate, k = f"{wire}#{k}", k + 1
    used.add(candidate)
    return candidate


def _prompt_digest(prompt: object) -> str:
    try:
        text = json.dumps(prompt, sort_keys=True, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(prompt)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


class ServiceReward:
    """A TRL reward function rewarding each GRPO group through the reward service (module docstring).

    Args:
        reward_url: the reward service, e.g. ``http://127.0.0.1:8000``.
        name: the function's ``__name__``; TRL logs ``rewards/<name>/mean`` and ``rewards/<name>/std``.
        api_key: bearer key of the reward service.
        num_generations: TRL's ``num_generations``; when given, a run of identical prompts (or a group id)
            is cut into groups of that size.
        fallback_reward: the reward of a completion that was not scored (counted); None: TRL's "no reward".
        schema_name, mode: used when neither a column nor the label says.
        reweight: ask for redundancy reweighting (False: the judged rewards, unweighted).
        redundancy: the reweighting's options (overrides ``reweight``); the service's settings when None.
        scoring: ``discrete`` or ``expected``; the service's setting when None.
        timeout_s: deadline of one ``/v1/rewards`` call.
        retries: the client's retries on connection failures, 429 and 503.
        keep_history: keep every batch's :class:`ScoredCompletion` records in :attr:`history` (tests,
            short runs); :attr:`last_batch` always holds the latest batch's.
        transport: an httpx transport for the client (tests).
    """

    def __init__(
        self,
        reward_url: str,
        *,
        name: str = "unifireward",
        api_key: str | None = None,
        num_generations: int | None = None,
        fallback_reward: float | None = 0.0,
        schema_name: SchemaName = "compeer",
        mode: JudgeMode = "unified",
        reweight: bool = True,
        redundancy: RedundancyOptions | None = None,
        scoring: Scoring | None = None,
        timeout_s: float = 120.0,
        retries: int = 3,
        keep_history: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if num_generations is not None and num_generations < 1:
            raise ValueError(f"num_generations must be at least 1, not {num_generations}")
        self.__name__ = name
        self.reward_url = reward_url
        self.api_key = api_key
        self.num_generations = num_generations
        self.fallback_reward = fallback_reward
        self.schema_name: SchemaName = schema_name
        self.mode: JudgeMode = mode
        self.redundancy = redundancy if redundancy is not None else RedundancyOptions(enabled=reweight)
        self.scoring: Scoring | None = scoring
        self.timeout_s = timeout_s
        self.retries = retries
        self.transport = transport
        self.keep_history = keep_history
        #: Calls made by TRL (batches), completions rewarded, completions that got the fallback reward.
        self.batches = 0
        self.completions = 0
        self.fallbacks = 0
        self.fallback_reasons: collections.Counter[str] = collections.Counter()
        #: ``POST /v1/rewards`` calls sent.
        self.requests = 0
        self.last_batch: list[ScoredCompletion] = []
        self.history: list[list[ScoredCompletion]] = []

    def __repr__(self) -> str:
        return f"ServiceReward({self.reward_url!r}, name={self.__name__!r})"

    def __call__(self, prompts: Sequence[object], completions: Sequence[object], **kwargs: Any) -> list[float | None]:
        """TRL's synchronous call: one reward per completion (see the module docstring)."""
        coroutine = self.ascore(prompts, completions, **kwargs)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coroutine)
        # Called from inside an event loop (a notebook): run on a loop of our own in a worker thread.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, coroutine).result()

    async def ascore(
        self, prompts: Sequence[object], completions: Sequence[object], **kwargs: Any
    ) -> list[float | None]:
        """The same as a call, for callers already in an event loop.

        Raises:
            ValueError: the call's shape is wrong (module docstring); never for a completion's own values.
        """
        n = len(completions)
        if len(prompts) != n:
            raise ValueError(f"{len(prompts)} prompts for {n} completions: TRL passes one prompt per completion")
        log_metric = kwargs.get("log_metric")
        columns = self._columns(kwargs, n)
        records: list[ScoredCompletion | None] = [None] * n
        groups, texts = self._groups(prompts, completions, columns, records)
        by_kind: dict[tuple[str, str], list[_Group]] = {}
        for g in groups:
            by_kind.setdefault((g.context.schema_name, g.context.mode), []).append(g)
        for kind_groups in by_kind.values():
            for group, answer in zip(kind_groups, await self._score(kind_groups, texts), strict=True):
                self._record(group, answer, texts, records)
        done = [r for r in records if r is not None]
        assert len(done) == n, "every completion gets a record"
        self._account(done, log_metric)
        return [r.reward for r in done]

    # -- the batch -------------------------------------------------------------------------------------------

    @staticmethod
    def _columns(kwargs: Mapping[str, Any], n: int) -> dict[str, Sequence[object]]:
        columns: dict[str, Sequence[object]] = {}
        for name in CONTEXT_COLUMNS:
            if name not in kwargs:
                continue
            values = kwargs[name]
            if isinstance(values, str | bytes | Mapping) or not isinstance(values, Sequence):
                raise ValueError(
                    f"column {name!r} must be a list of one value per completion, not {type(values).__name__}"
                )
            if len(values) != n:
                raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
            columns[name] = values
        if n and not {"label", "history", "reference"} & set(columns):
            raise ValueError(
                "the dataset has no dialogue column: give each row a 'label' (the OpenRLHF prompt rows' label) "
                "or 'history' and 'reference' columns"
            )
        return columns

    def _groups(
        self,
        prompts: Sequence[object],
        completions: Sequence[object],
        columns: Mapping[str, Sequence[object]],
        records: list[ScoredCompletion | None],
    ) -> tuple[list[_Group], dict[int, str]]:
        """The batch's groups in order, and the texts to send; unusable completions get their fallback now.

        A completion is placed by its position: with ``num_generations``, the k-th completion (counting from
        0) of a group id, or of a run of one prompt, goes to the group k // num_generations of that id or run.
        """
        by_key: dict[tuple[str, ...], _Group] = {}
        order: list[_Group] = []
        texts: dict[int, str] = {}
        seen: collections.Counter[tuple[str, ...]] = collections.Counter()
        previous: tuple[str, ...] | None = None
        run = 0
        for i in range(len(completions)):
            try:
                context = completion_context(columns, i, self.schema_name, self.mode)
            except UnusableValueError as exc:
                logger.warning("completion %d cannot be scored (%s): fallback reward", i, exc)
                records[i] = self._fallback(i, None, None, "context")
                continue
            if context.group_id is not None:
                key: tuple[str, ...] = ("id", context.group_id, context.digest())
            else:
                key = ("prompt", _prompt_digest(prompts[i]), context.digest())
                if key != previous:  # a new run of consecutive completions
                    run += 1
                previous = key
                key = (*key, str(run))
            ordinal = seen[key]
            seen[key] += 1
            try:
                text = completion_text(completions[i])
                if len(text) > MAX_TEXT:
                    raise UnusableValueError(f"the completion has {len(text)} characters, over {MAX_TEXT}")
            except UnusableValueError as exc:
                logger.warning("completion %d cannot be scored (%s): fallback reward", i, exc)
                records[i] = self._fallback(i, None, None, "completion")
                continue
            texts[i] = text
            slot = (*key, str(ordinal // self.num_generations if self.num_generations else 0))
            group = by_key.get(slot)
            if group is None:
                base = context.group_id if context.group_id is not None else f"batch{self.batches}-{len(order)}"
                group = by_key[slot] = _Group(base, context)
                order.append(group)
            group.indices.append(i)
        used: set[str] = set()
        for g in order:
            g.id = _wire_id(g.id, used)
        return order, texts

    # -- the service -----------------------------------------------------------------------------------------

    def _request(self, groups: Sequence[_Group], texts: Mapping[int, str]) -> RewardsRequest:
        first = groups[0].context
        return RewardsRequest(
            schema_name=first.schema_name,
            mode=first.mode,
            groups=[
                RewardGroup(
                    id=g.id,
                    history=list(g.context.history),
                    reference=g.context.reference,
                    candidates=[RewardCandidate(id=str(i), candidate=texts[i]) for i in g.indices],
                )
                for g in groups
            ],
            redundancy=self.redundancy,
            scoring=self.scoring,
            invalid_groups="report",
        )

    async def _score(self, groups: list[_Group], texts: Mapping[int, str]) -> list[GroupRewards | FallbackReason]:
        """Each group's answer, or why it has none; one call for all the groups (split only on a 413)."""
        try:
            request = self._request(groups, texts)
        except ValidationError as exc:
            logger.warning("%d groups could not be sent (%s): fallback rewards", len(groups), exc)
            return ["refused"] * len(groups)
        self.requests += 1
        client = RewardClient(
            self.reward_url,
            api_key=self.api_key,
            timeout_s=self.timeout_s,
            retries=self.retries,
            transport=self.transport,
        )
        try:
            async with client:
                answer = await asyncio.wait_for(client.rewards(request, timeout_s=self.timeout_s), self.timeout_s)
        except ServiceResponseError as exc:
            if exc.status == 413 and len(groups) > 1:  # more outputs than one request may hold: split the call
                half = len(groups) // 2
                return await self._score(groups[:half], texts) + await self._score(groups[half:], texts)
            logger.warning("%d groups were not scored (%s): fallback rewards", len(groups), exc)
            return ["service"] * len(groups)
        except (ClientError, TimeoutError) as exc:
            logger.warning("%d groups were not scored (%s): fallback rewards", len(groups), exc or "timeout")
            return ["service"] * len(groups)
        if len(answer.groups) != len(groups) or any(
            out.error is None and len(out.candidates) != len(g.indices)
            for g, out in zip(groups, answer.groups, strict=True)
        ):
            logger.warning("the reward service's answer does not match the groups sent: fallback rewards")
            return ["service"] * len(groups)
        return list(answer.groups)

    # -- the records -----------------------------------------------------------------------------------------

    def _fallback(self, index: int, group_id: str | None, text: str | None, reason: FallbackReason) -> ScoredCompletion:
        return ScoredCompletion(index, group_id, text, self.fallback_reward, None, None, reason)

    def _record(
        self,
        group: _Group,
        answer: GroupRewards | FallbackReason,
        texts: Mapping[int, str],
        records: list[ScoredCompletion | None],
    ) -> None:
        if isinstance(answer, str):
            for i in group.indices:
                records[i] = self._fallback(i, group.id, texts[i], answer)
            return
        if answer.error is not None:
            logger.warning(
                "group %s was refused (%s: %s): fallback rewards", group.id, answer.error.code, answer.error.message
            )
            for i in group.indices:
                records[i] = self._fallback(i, group.id, texts[i], "refused")
            return
        for i, candidate in zip(group.indices, answer.candidates, strict=True):
            if candidate.reward is None:
                logger.warning("completion %d (group %s) was not judged: fallback reward", i, group.id)
                records[i] = self._fallback(i, group.id, texts[i], "unjudged")
            else:
                records[i] = ScoredCompletion(
                    i, group.id, texts[i], float(candidate.reward), float(candidate.reward), candidate.raw_reward, None
                )

    def _account(self, records: list[ScoredCompletion], log_metric: object) -> None:
        self.batches += 1
        self.completions += len(records)
        fallbacks = [r for r in records if r.fallback is not None]
        self.fallbacks += len(fallbacks)
        self.fallback_reasons.update(r.fallback for r in fallbacks if r.fallback is not None)
        if fallbacks:
            logger.warning(
                "%s: %d of %d completions got the fallback reward %s (%d so far)",
                self.__name__,
                len(fallbacks),
                len(records),
                self.fallback_reward,
                self.fallbacks,
            )
        self.last_batch = records
        if self.keep_history:
            self.history.append(records)
        if callable(log_metric):
            cast(Callable[[str, float], None], log_metric)(f"{self.__name__}/fallbacks", float(len(fallbacks)))
