"""SFT data for the generative judge: each derived CER item as the judge conversations the service asks.

A generative judge backend (``vllm``, ``openai``) turns a ``POST /v1/judge`` item into a
:class:`~services.core.judge_prompts.JudgeTask` (``JudgeService.prepare``: the candidate parsed with
:func:`~services.core.candidate.parse_candidate`, the task built with
:func:`~services.core.judge_prompts.build_task`) and asks its turns as one conversation
(:func:`~services.core.judge_prompts.judge_messages`, each answer appended before the next turn); with
dual order the preference turn is asked a second time with the replies swapped
(:func:`~services.core.judge_prompts.swap_preference`). This module calls exactly those functions, so
a training conversation is the conversation the service sends, turn for turn. Its assistant turns are
the gold judgments: a one-line rationale written from the item's labels in varied words (seeded, so the
output is a function of the seed and the items), then the verdict line the service's parsers read.
Every gold answer matches :func:`~services.core.judge_prompts.judgment_regex`, so a judge trained on
them writes what structured outputs allow.

Per item and mode (``unified``, ``prm``, ``orm``) one conversation, and with ``dual_order`` one more
for each mode that ends with the preference (the reference shown second; its letter means the
opposite, :data:`~services.core.dual_order.SWAPPED`). Rows are written in two forms: OpenRLHF's
multi-turn SFT (0.11.2: ``--data.input_key messages --data.apply_chat_template --data.multiturn``; every
assistant turn is a response range) and plain ``messages`` (TRL's ``SFTTrainer``).

>>> from services.core.schemas import SCHEMAS
>>> item = CerItem.model_validate({
...     "id": "valid-0000-001-00-gold", "history": [{"role": "seeker", "content": "I lost my job."}],
...     "candidate": SCHEMAS["compeer"].example, "reference": "Oh no. What happened?",
...     "labels": {"steps": {"history_analysis": True, "emotional_state": True, "support_strategy": False},
...                "preference": "first"}})
>>> [(c.mode, c.order) for c in item_conversations(item, JudgeSFTConfig())]  # doctest: +NORMALIZE_WHITESPACE
[('unified', 'reference_first'), ('unified', 'candidate_first'), ('prm', 'reference_first'),
 ('orm', 'reference_first'), ('orm', 'candidate_first')]
>>> [m["content"].splitlines()[-1] for m in item_conversations(item, JudgeSFTConfig())[1].messages[2::2]]
['Verdict: True', 'Verdict: True', 'Verdict: False', 'Preference: B']
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError, model_validator

from services.contracts.reward import MAX_MESSAGES, MAX_TEXT
from services.core.candidate import ParsedCandidate, ParsedStep, parse_candidate
from services.core.dual_order import SWAPPED
from services.core.judge_prompts import (
    RATIONALE_MAX_CHARS,
    JudgeTask,
    build_task,
    judge_messages,
    swap_preference,
)
from services.core.judgments import PREFERENCE_OPTIONS
from services.core.schemas import SCHEMAS, Schema, StepSpec
from services.core.types import DialogueMessage, JudgeMode, Preference, SchemaName, TurnKind

#: Where the reference sits in the preference turn: first (the service's order) or second (dual order).
Order = Literal["reference_first", "candidate_first"]
#: The output formats, each written to ``<out>/<format>/<split>.jsonl``.
FORMATS: tuple[str, ...] = ("openrlhf", "messages")
#: The shortest rationale limit the builder accepts: its longest sentence (158 characters) fits in it; a
#: longer rationale (a step with several wrong fields) is cut at a word.
MIN_RATIONALE_CHARS = 160
_LETTERS: dict[Preference, str] = {option: letter for letter, option in PREFERENCE_OPTIONS.items()}


class RecordError(ValueError):
    """A line of the derived items that cannot be read as one; ``reason`` names the kind of fault."""

    def __init__(self, line: int, reason: str, detail: str) -> None:
        super().__init__(f"line {line}: {reason}: {detail}")
        self.line = line
        self.reason = reason


class CerLabels(BaseModel):
    """The gold verdicts of an item: one per step, and the preference (the reference is the first reply)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: dict[StrictStr, StrictBool]
    preference: Preference


class CerItem(BaseModel):
    """One derived CER item (record format in ``docs/data.md``), as far as the judge's data needs it.

    ``history``, ``candidate`` and ``reference`` carry the wire contract's hard caps (``POST /v1/judge``),
    so no training conversation comes from an item no service could accept. The provenance fields are
    optional: with them the rationales name what is wrong, without them they stay general.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: StrictStr = Field(min_length=1, max_length=256)
    split: StrictStr = ""
    schema_name: SchemaName = Field("compeer", alias="schema")
    history: list[DialogueMessage] = Field(max_length=MAX_MESSAGES)
    candidate: StrictStr = Field(max_length=MAX_TEXT)
    reference: StrictStr = Field(max_length=MAX_TEXT)
    labels: CerLabels
    dialogue_index: int | None = None
    round_index: int | None = None
    corruption: StrictStr | None = None
    reply_source: StrictStr | None = None
    reference_source: StrictStr | None = None

    @model_validator(mode="after")
    def _labels_name_the_schema_steps(self) -> Self:
        known = {spec.name for spec in SCHEMAS[self.schema_name].steps}
        unknown = sorted(set(self.labels.steps) - known)
        if unknown:
            raise ValueError(f"labels.steps names steps the {self.schema_name} schema lacks: {unknown}")
        written = parse_candidate(self.candidate, SCHEMAS[self.schema_name]).steps
        unlabelled = [name for name in written if name not in self.labels.steps]
        if unlabelled:
            raise ValueError(f"the candidate writes steps without a gold verdict in labels.steps: {unlabelled}")
        return self

    @property
    def round_key(self) -> tuple[str, int, int] | None:
        """(split, dialogue, round): the items derived from one round share it."""
        if self.dialogue_index is None or self.round_index is None:
            return None
        return self.split, self.dialogue_index, self.round_index

    def messages(self) -> list[DialogueMessage]:
        """The dialogue before the candidate's reply."""
        return list(self.history)


class JudgeSFTConfig(BaseModel):
    """How the SFT conversations are built.

    Attributes:
        modes: judge modes to write, each a conversation per item (``unified``, ``prm``, ``orm``).
        dual_order: also write the preference asked with the candidate first (``REWARD_DUAL_ORDER``),
            for every mode that has a preference turn.
        seed: seed of the rationales' wording; the output is a function of it and the items.
        rationale_max_chars: longest rationale, the service's ``REWARD_RATIONALE_MAX_CHARS``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    modes: tuple[JudgeMode, ...] = ("unified", "prm", "orm")
    dual_order: bool = True
    seed: int = 0
    rationale_max_chars: int = Field(RATIONALE_MAX_CHARS, ge=MIN_RATIONALE_CHARS, le=4000)

    @model_validator(mode="after")
    def _modes(self) -> Self:
        if not self.modes or len(set(self.modes)) != len(self.modes):
            raise ValueError("modes must name each judge mode at most once, and at least one")
        return self


@dataclass(frozen=True)
class JudgeConversation:
    """One training conversation: ``system``, then each judge turn and its gold answer.

    Attributes:
        item_id: the derived item it comes from.
        split: the item's split.
        mode: the judge mode whose turns it asks.
        order: where the reference is shown in the preference turn.
        messages: the chat, OpenAI format, ending with the last gold answer.
    """

    item_id: str
    split: str
    mode: JudgeMode
    order: Order
    messages: list[dict[str, str]]

    @property
    def id(self) -> str:
        """``<item id>/<mode>``, with ``/swapped`` when the candidate is shown first."""
        return f"{self.item_id}/{self.mode}" + ("/swapped" if self.order == "candidate_first" else "")

    def openrlhf_row(self) -> dict[str, Any]:
        """OpenRLHF's multi-turn SFT row (``--input_key messages``); the other keys are dropped on loading."""
        return {"messages": self.messages, "id": self.id, "mode": self.mode, "order": self.order}

    def messages_row(self) -> dict[str, Any]:
        """The plain conversational row (``{"messages": [...]}``) TRL's ``SFTTrainer`` reads."""
        return {"messages": self.messages}


@dataclass
class ReadResult:
    """The items read from a file, and how many lines were skipped for which fault."""

    items: list[CerItem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def parse_record(line: str, line_number: int = 1) -> CerItem:
    """Read one JSON line of the derived items.

    Raises:
        RecordError: the line is not JSON (``invalid_json``, a lone surrogate escape included), not an
            item (``invalid_record``: a field missing or of the wrong type, labels that do not fit the
            candidate) or not text (``invalid_text``: bytes that were not UTF-8).
    """
    try:
        return CerItem.model_validate_json(line)
    except ValidationError as exc:
        kinds = {error["type"] for error in exc.errors()}
        if "string_unicode" in kinds:  # surrogates in the line: bytes that were not UTF-8 (read_items_file)
            raise RecordError(line_number, "invalid_text", "the line holds bytes that are not UTF-8") from exc
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(record)"
        reason = "invalid_json" if kinds & {"json_invalid", "json_type"} else "invalid_record"
        raise RecordError(line_number, reason, f"{where}: {first['msg']}") from exc


def read_items(lines: Iterable[str], *, strict: bool = False, limit: int | None = None) -> ReadResult:
    """Read derived items, one JSON object a line; blank lines are ignored.

    Args:
        lines: the file's lines.
        strict: raise on the first line that is no item, instead of skipping it and counting why.
        limit: stop after this many items.

    Raises:
        RecordError: ``strict`` and a line is no item.
    """
    result = ReadResult()
    for number, line in enumerate(lines, 1):
        if limit is not None and len(result.items) >= limit:
            break
        if not line.strip():
            continue
        try:
            result.items.append(parse_record(line, number))
        except RecordError as exc:
            if strict:
                raise
            result.skipped[exc.reason] += 1
    return result


def read_items_file(path: str | Path, *, strict: bool = False, limit: int | None = None) -> ReadResult:
    """:func:`read_items` on a file; bytes that are not UTF-8 make their line ``invalid_text``."""
    with Path(path).open(encoding="utf-8", errors="surrogateescape") as handle:
        return read_items(handle, strict=strict, limit=limit)


# The rationales. Each case has several sentence patterns; which one is drawn by the seeded generator.
# None says "verdict" or "preference", so only the answer's last line carries the label.
_STAGE_MEANS = {
    "exploration": "the supporter is still learning what the seeker is going through",
    "comforting": "the supporter is acknowledging the seeker's feelings and easing them",
    "action": "the conversation has turned to what the seeker can do next",
}
_RIGHT: dict[str, tuple[str, ...]] = {
    "stage": (
        "The dialogue is at the {value} stage, as the step says: {means}.",
        "Stage {value} fits this point of the dialogue, where {means}.",
        "The step reads the dialogue well: {means}, so {value} is the right stage.",
    ),
    "emotion": (
        "The seeker's messages do express {value}, as the step states.",
        "{Value} is the feeling the seeker's words convey, so the step is right.",
        "The step names {value}, and that is what the seeker shows.",
    ),
    "strategy": (
        "{Value} is the right strategy for what the seeker just said.",
        "The step's plan, {value}, suits this point of the dialogue.",
        "At this point the reply should use {value}, which is what the step plans.",
    ),
}
_RIGHT_ANY = (
    "The step's {fields} fit what the seeker has said so far.",
    "What the step states ({fields}) matches the dialogue.",
    "The dialogue supports this step: {fields}.",
)
_RIGHT_TEXT = (
    "The step describes the seeker's situation as the dialogue shows it.",
    "The step matches what the seeker has said so far.",
    "Nothing in the dialogue contradicts this step.",
)
_WRONG: dict[str, tuple[str, ...]] = {
    "stage": (
        "The step says {value}, but {means}, so the stage is {gold}.",
        "This is the {gold} stage, not {value}: {means}.",
        "Stage {value} does not fit here; {means}, which is {gold}.",
    ),
    "emotion": (
        "The step names {value}, but the seeker's messages express {gold}.",
        "The seeker shows {gold}, not {value}.",
        "{Value} is not what the seeker feels; their words point to {gold}.",
    ),
    "strategy": (
        "{Value} does not fit this point; the reply should use {gold}.",
        "The dialogue calls for {gold} here, not {value}.",
        "The step plans {value}, but what the seeker just said needs {gold}.",
    ),
}
_WRONG_FIELD = (
    "The {name} should be {gold}, not {value}.",
    "The step states {name} {value}, but the dialogue shows {gold}.",
)
_WRONG_UNKNOWN = (
    "The {name} {value} does not fit this dialogue.",
    "The dialogue does not support {name} {value}.",
    "What the seeker has said does not match {name} {value}.",
)
_WRONG_TEXT = (
    "The step does not match what the seeker has said.",
    "The dialogue does not support this step.",
    "This step misreads the dialogue.",
)
_FLAWS: dict[str, tuple[str, ...]] = {
    "filler": (
        "is a generic phrase that could follow almost any message",
        "says nothing specific to the seeker's situation",
    ),
    "other_dialogue": (
        "belongs to a different conversation and misses what the seeker said",
        "answers someone else's situation, not this seeker's",
    ),
    "same_dialogue": (
        "belongs to another moment of this conversation, not to what the seeker just said",
        "answers an earlier or later point of the dialogue",
    ),
}
_FLAW_UNKNOWN = ("does not fit what the seeker just said", "misses the seeker's last message")
_BETTER: dict[Preference, tuple[str, ...]] = {
    "first": (
        "The reference answers what the seeker just said, while the candidate's reply {flaw}.",
        "The candidate's reply {flaw}; the reference fits this point of the dialogue.",
        "Only the reference responds to the seeker here: the candidate's reply {flaw}.",
    ),
    "second": (
        "The candidate's reply answers what the seeker just said, while the reference {flaw}.",
        "The reference {flaw}; the candidate's reply fits this point of the dialogue.",
        "Only the candidate's reply responds to the seeker here: the reference {flaw}.",
    ),
}
_EQUAL_SAME = (
    "The two replies are the same, and both fit what the seeker just said.",
    "Both replies say the same thing, which suits this point of the dialogue.",
    "The candidate's reply is the reference itself, a fitting answer to the seeker.",
)
_EQUAL = (
    "Both replies fit this point of the dialogue about equally well.",
    "Each reply answers what the seeker just said, and neither is clearly warmer.",
)
_NEITHER: dict[str, tuple[str, ...]] = {
    "other_dialogue": (
        "Both replies come from a different conversation and miss what the seeker just said.",
        "Neither reply is about this seeker: both answer someone else's situation.",
    ),
}
_NEITHER_ANY = (
    "Neither reply answers what the seeker just said.",
    "Both replies miss the seeker's last message, so neither is acceptable.",
)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fit(text: str, max_chars: int) -> str:
    """One line of at most ``max_chars`` characters, cut at a word when too long."""
    line = " ".join(text.split())
    if len(line) <= max_chars:
        return line
    cut = line[: max_chars - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut}."


def step_rationale(
    step: ParsedStep, spec: StepSpec, correct: bool, gold: Mapping[str, str] | None, rng: random.Random
) -> str:
    """Why a step is right or wrong, from its gold verdict and, when known, the round's gold values.

    A wrong step names each field whose value differs from the gold candidate of its round (the right
    value too); without that candidate, the field the step is about.
    """
    fields = dict(step.fields)
    if correct:
        for name in ("stage", "emotion", "strategy"):
            if name in fields:
                value = fields[name]
                return rng.choice(_RIGHT[name]).format(
                    value=value, Value=_cap(value), means=_STAGE_MEANS.get(value, "")
                )
        if fields:
            listed = ", ".join(f"{name} {value}" for name, value in fields.items())
            return rng.choice(_RIGHT_ANY).format(fields=listed)
        return rng.choice(_RIGHT_TEXT)
    wrong = {name: value for name, value in fields.items() if gold is not None and gold.get(name, value) != value}
    sentences = []
    for name, value in wrong.items():
        right = gold[name] if gold is not None else ""
        patterns = _WRONG.get(name, _WRONG_FIELD)
        sentences.append(
            rng.choice(patterns).format(
                name=name, value=value, Value=_cap(value), gold=right, means=_STAGE_MEANS.get(right, "")
            )
        )
    if sentences:
        return " ".join(sentences)
    main = next((f.name for f in spec.fields if f.name in fields), None)
    if main is None and step.invalid:
        main, raw = next(iter(step.invalid.items()))
        return rng.choice(_WRONG_UNKNOWN).format(name=main, value=raw)
    if main is None:
        return rng.choice(_WRONG_TEXT)
    return rng.choice(_WRONG_UNKNOWN).format(name=main, value=fields[main])


def preference_rationale(item: CerItem, rng: random.Random) -> str:
    """Why the gold preference holds, naming what is wrong with the worse reply when its source is known."""
    preference = item.labels.preference
    if preference in ("first", "second"):
        worse = item.reply_source if preference == "first" else item.reference_source
        flaw = rng.choice(_FLAWS.get(worse or "", _FLAW_UNKNOWN))
        return rng.choice(_BETTER[preference]).format(flaw=flaw)
    if preference == "equal":
        parsed = parse_candidate(item.candidate, SCHEMAS[item.schema_name]).response
        same = (parsed or "").strip() == item.reference.strip()
        return rng.choice(_EQUAL_SAME if same else _EQUAL)
    return rng.choice(_NEITHER.get(item.reply_source or "", _NEITHER_ANY))


def gold_answer(kind: TurnKind, rationale: str, label: bool | Preference) -> str:
    """A gold judgment: the rationale line, then the verdict line the parsers read.

    >>> gold_answer("step", "Fits.", True), gold_answer("preference", "Same.", "equal")
    ('Fits.\\nVerdict: True', 'Same.\\nPreference: C')
    """
    if kind == "step":
        return f"{rationale}\nVerdict: {'True' if label is True else 'False'}"
    if isinstance(label, bool):
        raise TypeError("a preference turn's label is a preference option")
    return f"{rationale}\nPreference: {_LETTERS[label]}"


def gold_values(items: Iterable[CerItem]) -> dict[tuple[str, int, int], dict[str, str]]:
    """The field values of each round's gold candidate (corruption ``gold``), by round."""
    values: dict[tuple[str, int, int], dict[str, str]] = {}
    for item in items:
        key = item.round_key
        if item.corruption == "gold" and key is not None:
            parsed = parse_candidate(item.candidate, SCHEMAS[item.schema_name])
            values[key] = {name: value for step in parsed.steps.values() for name, value in step.fields.items()}
    return values


def item_task(item: CerItem, mode: JudgeMode, candidate: ParsedCandidate | None = None) -> JudgeTask:
    """The judge task the service builds for this item's request (``JudgeService.prepare``); ``candidate``
    is the item's candidate already parsed, when the caller has it."""
    schema = SCHEMAS[item.schema_name]
    parsed = candidate if candidate is not None else parse_candidate(item.candidate, schema)
    return build_task(schema, mode, item.messages(), parsed, item.reference)


def _answers(
    item: CerItem, task: JudgeTask, schema: Schema, gold: Mapping[str, str] | None, rng: random.Random, max_chars: int
) -> tuple[list[str], str | None]:
    """The gold answers of the task's turns, and the preference turn's rationale (to swap it)."""
    answers: list[str] = []
    pref_rationale = None
    candidate: ParsedCandidate = task.candidate
    for turn in task.turns:
        if turn.kind == "step" and turn.step is not None:
            correct = item.labels.steps[turn.step]
            text = step_rationale(candidate.steps[turn.step], schema.step(turn.step), correct, gold, rng)
            answers.append(gold_answer("step", _fit(text, max_chars), correct))
        else:
            pref_rationale = _fit(preference_rationale(item, rng), max_chars)
            answers.append(gold_answer("preference", pref_rationale, item.labels.preference))
    return answers, pref_rationale


def item_conversations(
    item: CerItem, config: JudgeSFTConfig, gold: Mapping[str, str] | None = None
) -> list[JudgeConversation]:
    """The training conversations of one item: one per mode, and its swapped twin under dual order.

    Args:
        item: the derived item.
        config: modes, dual order, seed, rationale length.
        gold: the field values of the item's round's gold candidate, when known (:func:`gold_values`).

    Returns:
        The conversations, mode by mode; a mode with no turn (``prm`` on a candidate with no step
        written) has none.
    """
    schema = SCHEMAS[item.schema_name]
    candidate = parse_candidate(item.candidate, schema)  # once for every mode, as the service parses once
    out: list[JudgeConversation] = []
    for mode in config.modes:
        task = item_task(item, mode, candidate)
        if not task.turns:
            continue
        rng = random.Random(f"judge-sft:{config.seed}:{item.id}:{mode}")
        answers, pref_rationale = _answers(item, task, schema, gold, rng, config.rationale_max_chars)
        out.append(JudgeConversation(item.id, item.split, mode, "reference_first", judge_messages(task, answers)))
        if config.dual_order and pref_rationale is not None:
            swapped = SWAPPED[item.labels.preference]
            answers = [*answers[:-1], gold_answer("preference", pref_rationale, swapped)]
            messages = judge_messages(swap_preference(task), answers)
            out.append(JudgeConversation(item.id, item.split, mode, "candidate_first", messages))
    return out


def build_conversations(items: Sequence[CerItem], config: JudgeSFTConfig) -> Iterator[JudgeConversation]:
    """Every training conversation of ``items``, item by item (the order of the derived file)."""
    golds = gold_values(items)
    for item in items:
        key = item.round_key
        yield from item_conversations(item, config, golds.get(key) if key is not None else None)


def write_formats(conversations: Iterable[JudgeConversation], out: str | Path, split: str) -> Counter[str]:
    """Write every conversation in both formats, ``<out>/openrlhf/<split>.jsonl`` and
    ``<out>/messages/<split>.jsonl``, streaming (a split's conversations never sit in memory together).

    Returns:
        Conversations written per kind: the mode, with ``/swapped`` for the candidate-first order.
    """
    paths = {name: Path(out) / name / f"{split}.jsonl" for name in FORMATS}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    kinds: Counter[str] = Counter()
    with (
        paths["openrlhf"].open("w", encoding="utf-8") as openrlhf,
        paths["messages"].open("w", encoding="utf-8") as plain,
    ):
        for conversation in conversations:
            openrlhf.write(json.dumps(conversation.openrlhf_row(), ensure_ascii=False) + "\n")
            plain.write(json.dumps(conversation.messages_row(), ensure_ascii=False) + "\n")
            kinds[conversation.mode + ("/swapped" if conversation.order == "candidate_first" else "")] += 1
    return kinds
