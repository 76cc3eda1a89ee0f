"""Request and response models of the reward service's API v1 (pydantic only)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from services.esc_schema import SCHEMAS
from services.protocol import StrictModel

#: Hard caps written into the OpenAPI document; the service's settings may set lower limits.
MAX_TEXT = 100_000
MAX_ITEMS = 4096
MAX_MESSAGES = 2000

SchemaName = Literal["compeer", "care"]
JudgeMode = Literal["unified", "prm", "orm"]
ItemStatus = Literal["ok", "parse_error", "backend_error"]
PreferenceOption = Literal["first", "second", "equal", "neither"]


class Message(StrictModel):
    """One dialogue message."""

    role: Literal["seeker", "supporter"]
    content: str = Field(max_length=MAX_TEXT)


class JudgeItem(StrictModel):
    """One candidate to judge, with the dialogue before it."""

    id: str | None = Field(None, max_length=256, description="Echoed in the result; the item's index if absent.")
    history: list[Message] = Field(default_factory=list, max_length=MAX_MESSAGES)
    candidate: str = Field(max_length=MAX_TEXT, description="The policy's output: reasoning steps, then response.")
    reference: str | None = Field(
        None, max_length=MAX_TEXT, description="Reference reply; required in unified and orm modes."
    )


_EXAMPLE_ITEM: dict[str, Any] = {
    "id": "dialogue-7/round-3",
    "history": [
        {"role": "seeker", "content": "I'm feeling anxious that I am going to lose my job."},
        {"role": "supporter", "content": "Losing a job is always scary. Why do you think it might happen?"},
        {"role": "seeker", "content": "I am on short term disability and my job is not protected."},
    ],
    "candidate": SCHEMAS["compeer"].example,
    "reference": "I see. Have you spoken to HR?",
}


class JudgeRequest(StrictModel):
    """``POST /v1/judge``."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={"examples": [{"schema": "compeer", "mode": "unified", "items": [_EXAMPLE_ITEM]}]},
    )

    schema_name: SchemaName = Field("compeer", alias="schema", description="Reasoning schema of the candidates.")
    mode: JudgeMode = Field("unified", description="unified: steps and reply; prm: steps only; orm: reply only.")
    items: list[JudgeItem] = Field(min_length=1, max_length=MAX_ITEMS)


class StepJudgmentOut(StrictModel):
    """The judge's answer about one step."""

    step: str
    verdict: bool | None = Field(description="None when the judgment could not be parsed.")
    rationale: str
    status: str = Field(description="ok, or why no verdict was read: empty, no_verdict, ambiguous.")
    source: Literal["judge", "rule"] = Field(description="rule: the step was not written, so it counts wrong.")


class PreferenceJudgmentOut(StrictModel):
    """The judge's comparison of the reference (first) with the candidate's reply (second)."""

    option: PreferenceOption | None
    rationale: str
    status: str


class Judgments(StrictModel):
    """What the judge wrote, parsed."""

    steps: list[StepJudgmentOut]
    preference: PreferenceJudgmentOut | None
    raw: list[str] = Field(description="The judge's text for each turn, in order.")


class Components(StrictModel):
    """The reward's components (COMPEER's rules)."""

    steps: list[int] = Field(description="+1/-1 per step of the schema; empty in orm mode.")
    preference: int | None = Field(description="+1/-1; null in prm mode.")
    format: int = Field(description="+1 if every step, field and the reply are present, else -1.")
    unparsed: int = Field(description="Judgments that could not be read (counted by the unparseable setting).")


class ParsedStepOut(StrictModel):
    """One step of the candidate as parsed."""

    text: str
    fields: dict[str, str]
    invalid: dict[str, str] = Field(description="Fields whose value is not allowed, with what was written.")


class ParsedCandidateOut(StrictModel):
    """The candidate as the parser read it."""

    steps: dict[str, ParsedStepOut]
    response: str | None
    missing: list[str] = Field(description="Missing steps, fields (step.field) and response; empty if complete.")
    complete: bool


class JudgeResult(StrictModel):
    """The judgment of one item."""

    id: str
    reward: int | None = Field(description="Sum of the components; null when the backend failed.")
    components: Components | None
    judgments: Judgments | None
    parsed: ParsedCandidateOut
    status: ItemStatus
    errors: list[str]


class Usage(StrictModel):
    """Work done for the request."""

    items: int
    judge_turns: int
    prompt_tokens: int
    completion_tokens: int


class JudgeResponse(StrictModel):
    """``POST /v1/judge`` answer."""

    results: list[JudgeResult]
    model: str
    template_version: str
    usage: Usage


class FieldOut(StrictModel):
    """A field a step must carry."""

    name: str
    values: list[str]
    description: str


class StepOut(StrictModel):
    """A step of a schema."""

    name: str
    title: str
    description: str
    fields: list[FieldOut]


class SchemaOut(StrictModel):
    """A reasoning schema, with one complete example candidate."""

    name: str
    title: str
    steps: list[StepOut]
    response_tag: str
    example: str


class SchemaList(StrictModel):
    """``GET /v1/schemas``."""

    schemas: list[SchemaOut]
    template_version: str


RedundancyStatus = Literal["ok", "disabled", "embedder_unavailable", "embedder_error"]


class RewardCandidate(StrictModel):
    """One sampled output of the group."""

    id: str | None = Field(None, max_length=256, description="Echoed in the result; the candidate's index if absent.")
    candidate: str = Field(max_length=MAX_TEXT, description="The policy's output: reasoning steps, then response.")


class RewardGroup(StrictModel):
    """The outputs sampled for one dialogue (a GRPO group)."""

    id: str | None = Field(None, max_length=256, description="Echoed in the result; the group's index if absent.")
    history: list[Message] = Field(default_factory=list, max_length=MAX_MESSAGES)
    reference: str | None = Field(
        None, max_length=MAX_TEXT, description="Reference reply; required in unified and orm modes."
    )
    candidates: list[RewardCandidate | str] = Field(
        min_length=1, max_length=MAX_ITEMS, description="The group's outputs, as texts or {id, candidate}."
    )


class RedundancyOptions(StrictModel):
    """How redundancy reweights the group's rewards (COMPEER eq. 5-7); defaults from the service's settings."""

    enabled: bool = Field(True, description="false: rewards are returned unweighted, with status disabled.")
    variant: Literal["paper", "sign_aware"] | None = Field(
        None, description="paper: r * weight (eq. 5 as printed); sign_aware: a negative reward is divided by it."
    )
    alpha: float | None = Field(None, ge=0, le=100, allow_inf_nan=False, description="Steepness of the length gate.")
    beta: float | None = Field(None, ge=0, le=100_000, allow_inf_nan=False, description="Length where the gate is 1/2.")
    length_unit: Literal["words", "tokens"] | None = Field(None, description="Reply length in words or tokens.")


class RewardsRequest(StrictModel):
    """``POST /v1/rewards``."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "schema": "compeer",
                    "mode": "unified",
                    "groups": [
                        {
                            "id": "dialogue-7/round-3",
                            "history": _EXAMPLE_ITEM["history"],
                            "reference": _EXAMPLE_ITEM["reference"],
                            "candidates": [SCHEMAS["compeer"].example, SCHEMAS["compeer"].example],
                        }
                    ],
                    "redundancy": {"variant": "paper", "alpha": 0.5, "beta": 5},
                }
            ]
        },
    )

    schema_name: SchemaName = Field("compeer", alias="schema", description="Reasoning schema of the candidates.")
    mode: JudgeMode = Field("unified", description="unified: steps and reply; prm: steps only; orm: reply only.")
    groups: list[RewardGroup] = Field(min_length=1, max_length=MAX_ITEMS)
    redundancy: RedundancyOptions = Field(default_factory=RedundancyOptions)


class CandidateReward(StrictModel):
    """The reward of one output: raw (judged), its redundancy, and reweighted."""

    id: str
    reward: float | None = Field(description="The reweighted reward; the raw reward when redundancy is not ok.")
    raw_reward: int | None = Field(description="The judged reward (the sum of the components); null on backend error.")
    s_in: float | None = Field(description="Mean cosine to the group's other replies; null when not computed.")
    s_hi: float | None = Field(description="Mean cosine to the history utterances; null when not computed.")
    tau: float | None = Field(description="The group's length gate; null when not computed.")
    weight: float | None = Field(description="1 / ((1 + tau s_in)(1 + tau s_hi)); null when not computed.")
    redundancy: RedundancyStatus = Field(description="ok, or why the reward is unweighted.")
    judge: JudgeResult = Field(description="The judgment, as /v1/judge gives it.")


class GroupRewards(StrictModel):
    """The rewards of one group."""

    id: str
    candidates: list[CandidateReward]
    tau: float | None
    mean_length: float | None
    redundancy: RedundancyStatus
    redundancy_error: str | None = Field(description="Why the embedder gave no redundancy, when it did not.")


class RewardsResponse(StrictModel):
    """``POST /v1/rewards`` answer."""

    groups: list[GroupRewards]
    model: str
    embedder_model: str | None
    template_version: str
    variant: Literal["paper", "sign_aware"]
    usage: Usage


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
                            "history": _EXAMPLE_ITEM["history"],
                            "reference": _EXAMPLE_ITEM["reference"],
                        }
                    ],
                }
            ]
        },
    )

    query: list[str] = Field(
        min_length=1, max_length=MAX_ITEMS, description="Each sample's decoded prompt followed by the policy's output."
    )
    prompts: list[str] | None = Field(
        None, max_length=MAX_ITEMS, description="Each sample's prompt, cut off the query to find the output."
    )
    labels: list[dict[str, Any] | str] | None = Field(
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
        "s_hi, tau, weight, reweighted, group_fill, fallback."
    )
