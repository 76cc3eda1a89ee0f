"""What the reward service and the trainer share about OpenRLHF: its remote reward request and answer,
our prompt label, the policy's output inside a query, and one sample's reward with its logged numbers.

OpenRLHF 0.11.2 scores each sampled reply with its own request,
``{"query": [prompt + output], "prompts": [prompt], "labels": [label]}``. The label is the prompt
row's label column, passed through untouched; ours (:class:`PromptLabel`) carries the GRPO group's
id and size, the dialogue and the reference, so whoever gathers the group (the reward service's
``/openrlhf/reward`` or the trainer's agent executor) can have it scored as a group.

Both gatherers answer with :class:`SampleReward`: the reward the group rewards gave the sample, plus
``extra_logs`` of numbers only, always the same keys (OpenRLHF turns each into a tensor and averages it
over the rollout batch; :data:`EXTRA_LOG_KEYS` documents them).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import ConfigDict, Field, ValidationError
from pydantic_core import PydanticSerializationError

from services.contracts.common import StrictModel
from services.contracts.reward import EXAMPLE_ITEM, MAX_ITEMS, MAX_MESSAGES, MAX_TEXT, CandidateReward
from services.core.errors import InvalidRequestError
from services.core.gathering import Group
from services.core.types import DialogueMessage, JudgeMode, SchemaName

#: End-of-turn markers a decoded query may end with (OpenRLHF decodes with special tokens kept).
DEFAULT_STOP_MARKERS: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "</s>", "<eos>")

#: Longest query, prompt or label string: a decoded prompt (the dialogue in the policy's chat template)
#: plus the output. A body over ``REWARD_MAX_BODY_BYTES`` gets 413 whatever this allows.
MAX_SAMPLE_CHARS = 1_000_000
#: A sample's text. Constrained strings are also checked to be valid Unicode: a lone surrogate (``"\\ud800"``
#: escaped in JSON) is answered 422 ``string_unicode`` instead of failing later when the text is encoded.
SampleText = Annotated[str, Field(max_length=MAX_SAMPLE_CHARS)]

#: What each ``extra_logs`` number means; every sample carries every key.
EXTRA_LOG_KEYS: dict[str, str] = {
    "raw_reward": "the judged reward before redundancy reweighting (the fallback reward on fallback)",
    "step_accuracy": "share of the reasoning steps the judge found correct, 0..1 (0 without steps)",
    "preference": "+1 when the reply is judged at least as good as the reference, -1 when not, 0 unjudged",
    "format": "+1 when every step and the response are present, -1 when not, 0 unjudged",
    "s_in": "mean cosine of the reply to its group's other replies (0 when not measured)",
    "s_hi": "mean cosine of the reply to the dialogue's utterances (0 when not measured)",
    "tau": "the group's length gate (0 when not measured)",
    "weight": "1 / ((1 + tau s_in)(1 + tau s_hi)); 1 when not measured",
    "reweighted": "1 when the redundancy weight was applied, 0 when the reward is unweighted",
    "group_fill": "siblings scored together / group_size: 1 for a full group, less for a partial one, 0 late",
    "fallback": "1 when the judge gave no reward and the fallback reward was used, else 0",
    "queue_full": "1 when the judge's queue was full and the group waited for room (still judged unless fallback)",
}


class PromptLabel(StrictModel):
    """The label of one prompt row: OpenRLHF passes it to the reward with every sampled reply.

    Unknown keys are kept (teams add their own bookkeeping), and a JSON string is read as well as an
    object (``docs/training.md``).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    group_id: str | None = Field(
        None,
        min_length=1,
        max_length=512,
        description="Unique per prompt row: the replies sampled from it form one GRPO group. Absent: the "
        "reply is scored as a group of one.",
    )
    group_size: int = Field(1, ge=1, le=4096, description="The run's n_samples_per_prompt: replies per group.")
    schema_name: SchemaName = Field("compeer", alias="schema", description="Reasoning schema the policy writes.")
    mode: JudgeMode = Field("unified", description="What the judge checks: unified, prm (steps) or orm (reply).")
    history: list[DialogueMessage] = Field(
        default_factory=list, max_length=MAX_MESSAGES, description="The dialogue so far, oldest first."
    )
    reference: str | None = Field(None, max_length=MAX_TEXT, description="The gold supporter reply of this round.")


def parse_label(raw: object, param: str = "labels") -> PromptLabel:
    """Read a label: a JSON object, or a string holding one.

    Raises:
        InvalidRequestError: not JSON (nested too deep included), not a JSON object, a field is wrong (the
            message says which), or a text that is not valid Unicode (a lone surrogate). Nothing else.

    >>> parse_label('{"group_id": "d1-r2", "group_size": 4}').group_size
    4
    >>> parse_label({"history": [{"role": "seeker", "content": "hi"}]}).group_id is None
    True
    """
    value: Any = raw
    if isinstance(raw, str | bytes):
        try:
            value = json.loads(raw)
        except ValueError as exc:  # UnicodeDecodeError included
            raise InvalidRequestError(f"the label is not JSON: {exc}", param=param) from exc
        except RecursionError as exc:
            raise InvalidRequestError("the label is nested too deeply to read", param=param) from exc
    if not isinstance(value, dict):
        raise InvalidRequestError(
            f"the label must be a JSON object (group_id, group_size, schema, history, reference), not "
            f"{type(value).__name__}",
            param=param,
        )
    try:
        label = PromptLabel.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidRequestError(f"label field {where or '(root)'}: {first['msg']}", param=param) from exc
    except RecursionError as exc:
        raise InvalidRequestError("the label is nested too deeply", param=param) from exc
    try:
        # The group key serialises the label: kept keys must hold valid Unicode and plain JSON values.
        label.model_dump_json(by_alias=True)
    except (PydanticSerializationError, RecursionError) as exc:
        raise InvalidRequestError(
            "the label holds a value that is not valid Unicode text or JSON (a lone surrogate?)", param=param
        ) from exc
    return label


def group_key(label: PromptLabel) -> tuple[str, str] | None:
    """The key a sample's group is gathered under: the group id and a digest of the rest of the label.

    Two prompts that wrongly share a group id thus never get judged against each other's dialogue.
    None for a label without a group id (the sample is a group of one).
    """
    if label.group_id is None:
        return None
    content = label.model_dump_json(by_alias=True, exclude={"group_id"})
    return label.group_id, hashlib.blake2b(content.encode(), digest_size=16).hexdigest()


def policy_output(query: str, prompt: str, stop_markers: Sequence[str] = DEFAULT_STOP_MARKERS) -> str:
    """The policy's output inside an OpenRLHF query (the decoded prompt followed by the output).

    The prompt is cut off where the query repeats it (where they first differ, should decoding have
    changed a character of the prompt), then trailing end-of-turn markers and whitespace go.

    >>> policy_output("<|user|>hi<|assistant|>Hello there.<|im_end|>", "<|user|>hi<|assistant|>")
    'Hello there.'
    >>> policy_output("just an output", "")
    'just an output'
    """
    # Character by character on purpose: the output starts where the query stops repeating the prompt.
    output = query[len(os.path.commonprefix([query, prompt])) :].strip()  # noqa: RUF071
    trimmed = True
    while trimmed:
        trimmed = False
        for marker in stop_markers:
            if marker and output.endswith(marker):
                output = output[: -len(marker)].rstrip()
                trimmed = True
    return output


@dataclass(frozen=True)
class SampleReward:
    """One sample's reward and its logged numbers (keys of :data:`EXTRA_LOG_KEYS`)."""

    reward: float
    extra_logs: dict[str, float]

    @property
    def fallback(self) -> bool:
        """Whether the reward is the fallback (the judge gave none)."""
        return self.extra_logs["fallback"] == 1.0


def judge_kind(group: Group[PromptLabel, Any, Any]) -> tuple[str, str]:
    """What groups judged in one call must share: the label's schema and mode."""
    return group.context.schema_name, group.context.mode


def _logs(raw_reward: float, group_fill: float) -> dict[str, float]:
    """Every key of :data:`EXTRA_LOG_KEYS`: the raw reward and the fill, weight 1, the rest 0."""
    logs = dict.fromkeys(EXTRA_LOG_KEYS, 0.0)
    logs.update(raw_reward=float(raw_reward), weight=1.0, group_fill=float(group_fill))
    return logs


def fallback_sample(reward: float, group_fill: float) -> SampleReward:
    """The reward of a sample the judge gave none, flagged ``fallback`` = 1."""
    logs = _logs(reward, group_fill)
    logs["fallback"] = 1.0
    return SampleReward(float(reward), logs)


def candidate_sample(candidate: CandidateReward, *, fallback_reward: float, group_fill: float = 1.0) -> SampleReward:
    """One sample's reward as ``/v1/rewards`` scored it, with its logged numbers.

    The reward is the candidate's ``reward`` as it is: the group-rewards code is the one place that
    combines a judgment with its redundancy weight.

    Args:
        candidate: the sample's result from the group rewards.
        fallback_reward: the reward when the judge gave none (flagged ``fallback`` = 1).
        group_fill: the share of the group scored together.
    """
    if candidate.reward is None or candidate.raw_reward is None:
        return fallback_sample(fallback_reward, group_fill)
    logs = _logs(candidate.raw_reward, group_fill)
    components = candidate.judge.components
    if components is not None:
        steps = components.steps
        logs["step_accuracy"] = sum(1 for s in steps if s > 0) / len(steps) if steps else 0.0
        logs["preference"] = float(components.preference or 0)
        logs["format"] = float(components.format)
    if candidate.redundancy == "ok" and candidate.weight is not None:
        logs.update(s_in=candidate.s_in or 0.0, s_hi=candidate.s_hi or 0.0, tau=candidate.tau or 0.0)
        logs.update(weight=candidate.weight, reweighted=1.0)
    return SampleReward(float(candidate.reward), logs)


class OpenRLHFRewardRequest(StrictModel):
    """``POST /openrlhf/reward``: OpenRLHF's remote reward request (one item per list from its rollouts)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "query": ["<|im_start|>user\nI might lose my job.<|im_end|>\n<|im_start|>assistant\n<output>"],
                    "prompts": ["<|im_start|>user\nI might lose my job.<|im_end|>\n<|im_start|>assistant\n"],
                    "labels": [
                        {
                            "group_id": "esconv-train-0007-003",
                            "group_size": 4,
                            "schema": "compeer",
                            "history": EXAMPLE_ITEM["history"],
                            "reference": EXAMPLE_ITEM["reference"],
                        }
                    ],
                }
            ]
        },
    )

    query: list[SampleText] = Field(
        min_length=1, max_length=MAX_ITEMS, description="Each sample's decoded prompt followed by the policy's output."
    )
    prompts: list[SampleText] | None = Field(
        None, max_length=MAX_ITEMS, description="Each sample's prompt, cut off the query to find the output."
    )
    labels: list[dict[str, Any] | SampleText] | None = Field(
        None,
        max_length=MAX_ITEMS,
        description="Each sample's label: a JSON object (or a string holding one) with group_id, group_size, "
        "schema, history and reference (docs/training.md).",
    )


class OpenRLHFRewardResponse(StrictModel):
    """``POST /openrlhf/reward`` answer, aligned with the request's ``query``."""

    rewards: list[float] = Field(description="The reward of each sample (reweighted by its group's redundancy).")
    scores: list[float] = Field(description="The same rewards (OpenRLHF filters and logs on scores).")
    extra_logs: dict[str, list[float]] = Field(
        description="Numbers OpenRLHF logs, one per sample: raw_reward, step_accuracy, preference, format, s_in, "
        "s_hi, tau, weight, reweighted, group_fill, fallback, queue_full."
    )
