"""Request and response models of the reward service's API v1 (pydantic only).

The reward service answers them; the trainer's agent executor, the preflight job and other teams'
clients (:mod:`services.contracts.clients`) send them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from services.contracts.common import ErrorBody, StrictModel
from services.core.schemas import SCHEMAS
from services.core.types import (
    DialogueMessage,
    ItemStatus,
    JudgeMode,
    LengthUnit,
    Preference,
    SchemaName,
    Scoring,
    Variant,
)

#: Hard caps written into the OpenAPI document, the ceilings of the service's working limits
#: (``REWARD_MAX_FIELD_CHARS``, ``REWARD_MAX_ITEMS_PER_REQUEST``, ``REWARD_MAX_HISTORY_MESSAGES``, lower by
#: default). Whatever they allow, a body over ``REWARD_MAX_BODY_BYTES`` gets 413.
MAX_TEXT = 32_000
MAX_ITEMS = 1024
MAX_MESSAGES = 400

_REFERENCE = (
    "Reference reply. Required (a string, not null) in unified and orm modes, which compare the reply with it "
    "(422 missing_reference without it); ignored in prm mode."
)


def _needs_reference(list_field: str) -> dict[str, Any]:
    """The JSON-schema rule that every entry of ``list_field`` has a reference unless the mode is prm."""
    return {
        "if": {"properties": {"mode": {"const": "prm"}}, "required": ["mode"]},
        "else": {
            "properties": {
                list_field: {"items": {"required": ["reference"], "properties": {"reference": {"type": "string"}}}}
            }
        },
    }


def check_references(mode: str, references: Iterable[str | None], where: str) -> None:
    """Refuse an entry without a reference in a mode that compares the reply with one.

    Raises:
        PydanticCustomError: ``missing_reference``; its context's ``param`` names the first entry without one.
    """
    if mode == "prm":
        return
    for i, reference in enumerate(references):
        if reference is None:
            raise PydanticCustomError(
                "missing_reference",
                "mode '{mode}' compares the reply with a reference; this item has none",
                {"mode": mode, "param": f"{where}.{i}.reference"},  # the envelope's param
            )


class JudgeItem(StrictModel):
    """One candidate to judge, with the dialogue before it."""

    id: str | None = Field(None, max_length=256, description="Echoed in the result; the item's index if absent.")
    history: list[DialogueMessage] = Field(default_factory=list, max_length=MAX_MESSAGES)
    candidate: str = Field(max_length=MAX_TEXT, description="The policy's output: reasoning steps, then response.")
    reference: str | None = Field(None, max_length=MAX_TEXT, description=_REFERENCE)


EXAMPLE_ITEM: dict[str, Any] = {
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
        json_schema_extra={
            "examples": [{"schema": "compeer", "mode": "unified", "items": [EXAMPLE_ITEM]}],
            **_needs_reference("items"),
        },
    )

    schema_name: SchemaName = Field("compeer", alias="schema", description="Reasoning schema of the candidates.")
    mode: JudgeMode = Field("unified", description="unified: steps and reply; prm: steps only; orm: reply only.")
    items: list[JudgeItem] = Field(min_length=1, max_length=MAX_ITEMS)
    scoring: Scoring | None = Field(
        None,
        description="discrete: COMPEER's +1/-1 per component; expected: each replaced by its expectation under "
        "the judge's probabilities (format stays rule-based). Default: the service's REWARD_SCORING.",
    )

    @model_validator(mode="after")
    def _references(self) -> Self:
        check_references(self.mode, (item.reference for item in self.items), "items")
        return self


class StepJudgmentOut(StrictModel):
    """The judge's answer about one step."""

    step: str
    verdict: bool | None = Field(description="None when the judgment could not be parsed.")
    rationale: str
    status: str = Field(description="ok, or why no verdict was read: empty, no_verdict, ambiguous.")
    source: Literal["judge", "rule"] = Field(description="rule: the step was not written, so it counts wrong.")
    p_correct: float | None = Field(
        None, description="The judge's probability that the step is correct; null when it gives none."
    )


class PreferenceProbabilities(StrictModel):
    """The judge's probability of each preference option (they sum to 1)."""

    first: float
    second: float
    equal: float
    neither: float


class PreferenceJudgmentOut(StrictModel):
    """The judge's comparison of the reference (first) with the candidate's reply (second)."""

    option: Preference | None
    rationale: str
    status: str
    probabilities: PreferenceProbabilities | None = Field(
        None, description="The judge's probability of each option; null when it gives none."
    )


class Judgments(StrictModel):
    """What the judge wrote, parsed."""

    steps: list[StepJudgmentOut]
    preference: PreferenceJudgmentOut | None
    raw: list[str] = Field(description="The judge's text for each turn, in order.")


class Components(StrictModel):
    """The reward's components (COMPEER's rules)."""

    steps: list[float] = Field(
        description="+1/-1 per step of the schema (expected scoring: 2 p_correct - 1); empty in orm mode."
    )
    preference: float | None = Field(
        description="+1/-1 (expected scoring: P(second) + P(equal) - P(first) - P(neither)); null in prm mode."
    )
    format: int = Field(description="+1 if every step, field and the reply are present, else -1.")
    unparsed: int = Field(description="Judgments that could not be read (counted by the unparseable setting).")
    without_probability: int = Field(
        0,
        description="Expected scoring: read judgments that came without a probability and count +1/-1 "
        "(a step decided by rule, a judge that gives none).",
    )


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
    reward: float | None = Field(description="Sum of the components; null when the backend failed.")
    scoring: Scoring = Field(description="How the verdicts became the reward: discrete or expected.")
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


RedundancyStatus = Literal["ok", "disabled", "embedder_unavailable", "embedder_error", "not_scored"]


class RewardCandidate(StrictModel):
    """One sampled output of the group."""

    id: str | None = Field(None, max_length=256, description="Echoed in the result; the candidate's index if absent.")
    candidate: str = Field(max_length=MAX_TEXT, description="The policy's output: reasoning steps, then response.")


class RewardGroup(StrictModel):
    """The outputs sampled for one dialogue (a GRPO group)."""

    id: str | None = Field(None, max_length=256, description="Echoed in the result; the group's index if absent.")
    history: list[DialogueMessage] = Field(default_factory=list, max_length=MAX_MESSAGES)
    reference: str | None = Field(None, max_length=MAX_TEXT, description=_REFERENCE)
    candidates: list[RewardCandidate | str] = Field(
        min_length=1, max_length=MAX_ITEMS, description="The group's outputs, as texts or {id, candidate}."
    )


class RedundancyOptions(StrictModel):
    """How redundancy reweights the group's rewards (COMPEER eq. 5-7); defaults from the service's settings."""

    enabled: bool = Field(True, description="false: rewards are returned unweighted, with status disabled.")
    variant: Variant | None = Field(
        None, description="paper: r * weight (eq. 5 as printed); sign_aware: a negative reward is divided by it."
    )
    alpha: float | None = Field(None, ge=0, le=100, allow_inf_nan=False, description="Steepness of the length gate.")
    beta: float | None = Field(None, ge=0, le=100_000, allow_inf_nan=False, description="Length where the gate is 1/2.")
    length_unit: LengthUnit | None = Field(None, description="Reply length in words or tokens.")


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
                            "history": EXAMPLE_ITEM["history"],
                            "reference": EXAMPLE_ITEM["reference"],
                            "candidates": [SCHEMAS["compeer"].example, SCHEMAS["compeer"].example],
                        }
                    ],
                    "redundancy": {"variant": "paper", "alpha": 0.5, "beta": 5},
                }
            ],
            # In report mode a group without a needed reference is answered with its error instead.
            "if": {
                "anyOf": [
                    {"properties": {"mode": {"const": "prm"}}, "required": ["mode"]},
                    {"properties": {"invalid_groups": {"const": "report"}}, "required": ["invalid_groups"]},
                ]
            },
            "else": _needs_reference("groups")["else"],
        },
    )

    schema_name: SchemaName = Field("compeer", alias="schema", description="Reasoning schema of the candidates.")
    mode: JudgeMode = Field("unified", description="unified: steps and reply; prm: steps only; orm: reply only.")
    groups: list[RewardGroup] = Field(min_length=1, max_length=MAX_ITEMS)
    redundancy: RedundancyOptions = Field(default_factory=RedundancyOptions)
    scoring: Scoring | None = Field(
        None,
        description="discrete: COMPEER's +1/-1 per component; expected: each replaced by its expectation under "
        "the judge's probabilities (format stays rule-based). Default: the service's REWARD_SCORING.",
    )
    invalid_groups: Literal["reject", "report"] = Field(
        "reject",
        description="reject: a group over the limits (or without a needed reference) fails the whole request "
        "(413/422); report: that group is answered with its error and no candidates, and the others are scored.",
    )

    @model_validator(mode="after")
    def _references(self) -> Self:
        if self.invalid_groups == "reject":
            check_references(self.mode, (group.reference for group in self.groups), "groups")
        return self


class CandidateReward(StrictModel):
    """The reward of one output: raw (judged), its redundancy, and reweighted."""

    id: str
    reward: float | None = Field(description="The reweighted reward; the raw reward when redundancy is not ok.")
    raw_reward: float | None = Field(
        description="The judged reward (the sum of the components); null on backend error."
    )
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
    error: ErrorBody | None = Field(
        None, description="Why this group was not scored (invalid_groups: report); its candidates are then empty."
    )


class RewardsResponse(StrictModel):
    """``POST /v1/rewards`` answer."""

    groups: list[GroupRewards]
    model: str
    embedder_model: str | None
    template_version: str
    variant: Variant
    usage: Usage
