"""Request and response models of the embedding service's API v1 (pydantic only).

``/v1/embeddings`` follows OpenAI's embeddings API; ``/v1/redundancy`` is COMPEER's eq. 5-7 for
groups of replies (see :mod:`services.core.redundancy`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from services.contracts.common import StrictModel
from services.core.redundancy import DEFAULT_ALPHA, DEFAULT_BETA
from services.core.types import DialogueMessage, LengthUnit

#: Hard caps written into the OpenAPI document, the ceilings of the service's working limits
#: (``EMBEDDER_MAX_TEXT_CHARS``, ``EMBEDDER_MAX_TEXTS_PER_REQUEST``, ``EMBEDDER_MAX_GROUPS_PER_REQUEST``,
#: whose defaults are these). Whatever they allow, a body over ``EMBEDDER_MAX_BODY_BYTES`` gets 413.
MAX_TEXT = 32_000
MAX_TEXTS = 2048
MAX_GROUPS = 256
Text = Annotated[str, Field(max_length=MAX_TEXT)]

TOKEN_IDS_REFUSED = (
    "token-id input is not supported: send texts (ids only mean something to the tokenizer that made them)"
)


def texts_only(value: object) -> object:
    """Refuse an oversized list or one holding anything but texts with one error, before the field's types.

    One pass over the raw list: a body of a million short items costs milliseconds here, where the
    type union would build an error per item and alternative.

    Raises:
        PydanticCustomError: ``request_too_large`` (answered 413) for more than :data:`MAX_TEXTS` items,
            ``unsupported_input`` for token ids, ``string_type`` for any other item.

    >>> texts_only(["a", "b"])
    ['a', 'b']
    >>> texts_only([1, 2])
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.PydanticCustomError: token-id input is not supported: ...
    """
    if not isinstance(value, list):
        return value
    if len(value) > MAX_TEXTS:
        raise PydanticCustomError(
            "request_too_large",
            "{count} texts in one request; the limit is {limit}",
            {"count": len(value), "limit": MAX_TEXTS},
        )
    for item in value:
        if isinstance(item, str):
            continue
        if isinstance(item, list) or (isinstance(item, int) and not isinstance(item, bool)):
            raise PydanticCustomError("unsupported_input", TOKEN_IDS_REFUSED)
        raise PydanticCustomError(
            "string_type", "every input item must be a text, not {kind}", {"kind": type(item).__name__}
        )
    return value


class EmbeddingRequest(StrictModel):
    """``POST /v1/embeddings`` (OpenAI-compatible)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model": "all-MiniLM-L6-v2", "input": ["I hear you.", "That sounds hard."]}]},
    )

    input: Annotated[Text | Annotated[list[Text], Field(max_length=MAX_TEXTS)], BeforeValidator(texts_only)] = Field(
        description="A text or a list of texts. OpenAI's token-id input (lists of integers) is refused (422, code "
        "unsupported_input): token ids only mean something to the tokenizer that made them."
    )
    model: str | None = Field(None, max_length=512, description="The served model's id; any other id is a 404.")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="float: lists of numbers; base64: little-endian float32 bytes."
    )
    dimensions: int | None = Field(None, ge=1, description="Must equal the model's size if given (no truncation).")
    user: str | None = Field(None, max_length=512, description="The caller's end-user id; logged, not stored.")


class EmbeddingData(StrictModel):
    """One vector."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(StrictModel):
    """Tokens read."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(StrictModel):
    """``POST /v1/embeddings`` answer, in input order."""

    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage


class RedundancyGroup(StrictModel):
    """The replies sampled for one dialogue (a GRPO group) and the dialogue before them."""

    id: str | None = Field(None, max_length=256, description="Echoed in the result; the group's index if absent.")
    candidates: list[Text] = Field(min_length=1, max_length=MAX_TEXTS, description="The group's replies.")
    history: list[Text | DialogueMessage] = Field(
        default_factory=list,
        max_length=MAX_TEXTS,
        description="The dialogue's utterances, as texts or {role, content} messages.",
    )


_EXAMPLE_GROUP: dict[str, Any] = {
    "id": "dialogue-7/round-3",
    "candidates": ["That sounds really hard.", "That sounds really hard.", "Have you talked to HR about it?"],
    "history": ["I'm anxious I will lose my job.", "Why do you think it might happen?"],
}


class RedundancyRequest(StrictModel):
    """``POST /v1/redundancy``."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"groups": [_EXAMPLE_GROUP], "alpha": 0.5, "beta": 5}]}
    )

    groups: list[RedundancyGroup] = Field(min_length=1, max_length=MAX_GROUPS)
    alpha: float = Field(DEFAULT_ALPHA, ge=0, le=100, allow_inf_nan=False, description="Steepness of the length gate.")
    beta: float = Field(
        DEFAULT_BETA, ge=0, le=100_000, allow_inf_nan=False, description="Reply length where the gate is 1/2."
    )
    length_unit: LengthUnit = Field("words", description="Reply length in words, or in the model's tokens.")
    model: str | None = Field(None, max_length=512, description="The served model's id; any other id is a 404.")


class GroupRedundancyOut(StrictModel):
    """Redundancy of one group, per candidate in input order."""

    id: str
    s_in: list[float] = Field(description="Mean cosine to the group's other replies (0 for a group of one).")
    s_hi: list[float] = Field(description="Mean cosine to the history utterances (0 without history).")
    tau: float = Field(description="1 / (1 + exp(-alpha (mean_length - beta))).")
    mean_length: float = Field(description="Mean reply length of the group, in length_unit.")
    weights: list[float] = Field(description="1 / ((1 + tau s_in)(1 + tau s_hi)), negative similarities as 0.")


class RedundancyUsage(StrictModel):
    """Work done: texts read, how many were embedded and how many came from the history cache."""

    texts: int
    embedded: int
    cached: int
    prompt_tokens: int


class RedundancyResponse(StrictModel):
    """``POST /v1/redundancy`` answer."""

    groups: list[GroupRedundancyOut]
    model: str
    alpha: float
    beta: float
    length_unit: LengthUnit
    usage: RedundancyUsage
