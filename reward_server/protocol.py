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
