"""ESC reasoning schemas: COMPEER's three stages and CARE's four nodes, as data.

A *schema* is an ordered list of reasoning steps. Each step has a tag name (what the policy writes,
e.g. ``<emotional_state>``), a title, free text and zero or more *fields*: ``Key: value`` lines whose
values come from a closed vocabulary (the support stage, the seeker's emotion, one of ESConv's eight
strategies...). After the steps the policy writes its reply inside ``<response>``.

This module is pure (no fastapi, no torch) so the trainer, both services and other teams can import it.

>>> [s.name for s in SCHEMAS["compeer"].steps]
['history_analysis', 'emotional_state', 'support_strategy']
>>> normalize_value("strategy", "**Reflection of Feelings**")
'Reflection of feelings'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.core.types import SchemaName

STAGES: tuple[str, ...] = ("exploration", "comforting", "action")
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
#: ESConv's emotion types (all 1,300 dialogues), most frequent first.
EMOTIONS: tuple[str, ...] = (
    "anxiety",
    "depression",
    "sadness",
    "anger",
    "fear",
    "shame",
    "disgust",
    "nervousness",
    "guilt",
    "jealousy",
    "pain",
)
#: ESConv's eight support strategies, in the order of its ``strategy.json``.
STRATEGIES: tuple[str, ...] = (
    "Question",
    "Restatement or Paraphrasing",
    "Reflection of feelings",
    "Self-disclosure",
    "Affirmation and Reassurance",
    "Providing Suggestions",
    "Information",
    "Others",
)
INTENSITIES: tuple[str, ...] = ("1", "2", "3", "4", "5")

#: The support stage each strategy leans to (ESConv, Liu et al. 2021, sec. 3); ``Others`` has none.
STRATEGY_STAGE: dict[str, str | None] = {
    "Question": "exploration",
    "Restatement or Paraphrasing": "exploration",
    "Reflection of feelings": "comforting",
    "Self-disclosure": "comforting",
    "Affirmation and Reassurance": "comforting",
    "Providing Suggestions": "action",
    "Information": "action",
    "Others": None,
}

_WORD_INTENSITY = {
    "very low": "1",
    "low": "2",
    "mild": "2",
    "moderate": "3",
    "medium": "3",
    "high": "4",
    "strong": "4",
    "very high": "5",
    "extreme": "5",
    "severe": "5",
}

_STRATEGY_ALIASES = {
    "question": "Question",
    "questions": "Question",
    "asking questions": "Question",
    "restatement": "Restatement or Paraphrasing",
    "paraphrasing": "Restatement or Paraphrasing",
    "restatement or paraphrasing": "Restatement or Paraphrasing",
    "restatement/paraphrasing": "Restatement or Paraphrasing",
    "reflection of feelings": "Reflection of feelings",
    "reflection": "Reflection of feelings",
    "reflecting feelings": "Reflection of feelings",
    "self-disclosure": "Self-disclosure",
    "self disclosure": "Self-disclosure",
    "affirmation and reassurance": "Affirmation and Reassurance",
    "affirmation & reassurance": "Affirmation and Reassurance",
    "affirmation": "Affirmation and Reassurance",
    "reassurance": "Affirmation and Reassurance",
    "providing suggestions": "Providing Suggestions",
    "suggestions": "Providing Suggestions",
    "suggestion": "Providing Suggestions",
    "information": "Information",
    "providing information": "Information",
    "others": "Others",
    "other": "Others",
}

_STAGE_ALIASES = {
    "exploration": "exploration",
    "explore": "exploration",
    "exploring": "exploration",
    "comforting": "comforting",
    "comfort": "comforting",
    "action": "action",
    "actions": "action",
}


@dataclass(frozen=True)
class FieldSpec:
    """A ``Key: value`` line a step must carry.

    Attributes:
        name: the key, lower case (``stage``, ``emotion``...).
        values: the allowed values after normalisation.
        description: what the value means, shown to clients and to the policy.
    """

    name: str
    values: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class StepSpec:
    """One reasoning step: its tag, a human title, what it is about and the fields it must carry."""

    name: str
    title: str
    description: str
    fields: tuple[FieldSpec, ...] = ()
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schema:
    """An ordered reasoning schema followed by the ``<response>`` block."""

    name: SchemaName
    title: str
    steps: tuple[StepSpec, ...]
    example: str = field(repr=False, default="")

    def step(self, name: str) -> StepSpec:
        """Return the step called ``name``.

        Raises:
            KeyError: no such step in this schema.
        """
        for spec in self.steps:
            if spec.name == name:
                return spec
        raise KeyError(name)


STAGE_FIELD = FieldSpec("stage", STAGES, "support stage the conversation should be in now")
SENTIMENT_FIELD = FieldSpec("sentiment", SENTIMENTS, "the seeker's overall sentiment")
EMOTION_FIELD = FieldSpec("emotion", EMOTIONS, "the seeker's main emotion (ESConv's emotion types)")
INTENSITY_FIELD = FieldSpec("intensity", INTENSITIES, "the emotion's intensity, 1 (weak) to 5 (strong)")
STRATEGY_FIELD = FieldSpec("strategy", STRATEGIES, "the support strategy of the reply (ESConv's eight)")

_FIELD_VALUES = {
    f.name: f.values for f in (STAGE_FIELD, SENTIMENT_FIELD, EMOTION_FIELD, INTENSITY_FIELD, STRATEGY_FIELD)
}

RESPONSE_TAG = "response"

COMPEER_EXAMPLE = """<history_analysis>
The seeker is on short-term disability and fears losing a job that has no medical-leave protection.
They have already spoken to HR and are waiting on their manager, so we are still learning what they
need.
Stage: exploration
</history_analysis>
<emotional_state>
Sentiment: negative
Emotion: anxiety
Intensity: 4
The seeker keeps returning to the fear of losing the job and says they are not ready to go back.
</emotional_state>
<support_strategy>
Strategy: Question
Ask what the manager has said so far, to understand how urgent the situation is before comforting.
</support_strategy>
<response>
That sounds really stressful. Has your manager given you any idea of when they will decide?
</response>"""

CARE_EXAMPLE = """<context>
The seeker is on short-term disability and fears losing a job that has no medical-leave protection.
</context>
<cognition>
They believe the decision is out of their hands because the manager has not answered HR yet.
</cognition>
<emotion>
Sentiment: negative
Emotion: anxiety
Intensity: 4
</emotion>
<support_plan>
Strategy: Reflection of feelings
Name the worry so they feel heard, then explore what support HR can offer.
</support_plan>
<response>
It sounds like waiting for your manager is making you really anxious about your job.
</response>"""

SCHEMAS: dict[str, Schema] = {
    "compeer": Schema(
        name="compeer",
        title="COMPEER: three-stage controllable empathetic reasoning",
        steps=(
            StepSpec(
                "history_analysis",
                "Conversation history analysis",
                "What the seeker's problem is so far and which support stage the conversation needs.",
                (STAGE_FIELD,),
                aliases=("history", "conversation_history", "history_analysis", "step1", "step_1"),
            ),
            StepSpec(
                "emotional_state",
                "Emotional state",
                "The seeker's sentiment, emotion and its intensity.",
                (SENTIMENT_FIELD, EMOTION_FIELD, INTENSITY_FIELD),
                aliases=("emotion", "emotional_state", "emotion_state", "step2", "step_2"),
            ),
            StepSpec(
                "support_strategy",
                "Support strategy",
                "Which of ESConv's eight strategies the reply uses, and why.",
                (STRATEGY_FIELD,),
                aliases=("strategy", "support_strategy", "step3", "step_3"),
            ),
        ),
        example=COMPEER_EXAMPLE,
    ),
    "care": Schema(
        name="care",
        title="CARE: Context, Cognition, Emotion, Support Plan",
        steps=(
            StepSpec(
                "context",
                "Context",
                "The seeker's situation as the dialogue has revealed it.",
                aliases=("context", "situation"),
            ),
            StepSpec(
                "cognition",
                "Cognition",
                "What the seeker thinks or believes about the situation.",
                aliases=("cognition", "cognitive", "thoughts"),
            ),
            StepSpec(
                "emotion",
                "Emotion",
                "The seeker's sentiment, emotion and its intensity.",
                (SENTIMENT_FIELD, EMOTION_FIELD, INTENSITY_FIELD),
                aliases=("emotion", "emotions", "emotional_state"),
            ),
            StepSpec(
                "support_plan",
                "Support plan",
                "The strategy of the reply (ESConv's eight) and the plan behind it.",
                (STRATEGY_FIELD,),
                aliases=("support_plan", "plan", "support", "strategy"),
            ),
        ),
        example=CARE_EXAMPLE,
    ),
}

_SPACE = re.compile(r"\s+")
_DECOR = re.compile(r"[*_`\[\]\"'()<>#]+")


def _clean(value: str) -> str:
    return _SPACE.sub(" ", _DECOR.sub(" ", value)).strip().lower().rstrip(".;,:!")


def normalize_value(field_name: str, raw: str) -> str | None:
    """Map a field value as a model wrote it to the schema's canonical value.

    Args:
        field_name: one of ``stage``, ``sentiment``, ``emotion``, ``intensity``, ``strategy``.
        raw: the text after ``Key:``; markdown, brackets, case and trailing punctuation are ignored.

    Returns:
        The canonical value, or None when the text names no allowed value.

    >>> normalize_value("intensity", "4/5"), normalize_value("intensity", "High")
    ('4', '4')
    >>> normalize_value("stage", "[Comforting]"), normalize_value("emotion", "joy") is None
    ('comforting', True)
    """
    text = _clean(raw)
    if not text:
        return None
    if field_name == "strategy":
        return _STRATEGY_ALIASES.get(text) or _prefix_match(text, _STRATEGY_ALIASES)
    if field_name == "stage":
        return _STAGE_ALIASES.get(text) or _prefix_match(text, _STAGE_ALIASES)
    if field_name == "intensity":
        digit = re.match(r"([1-5])\b(?:\s*(?:/|out of|of)\s*(\d+)\b)?", text)
        if digit:
            # "4/10" is on another scale: reading it as 4 of 5 would overstate the intensity.
            return digit.group(1) if digit.group(2) in (None, "5") else None
        return _WORD_INTENSITY.get(text)
    values = _FIELD_VALUES.get(field_name, ())
    if text in values:
        return text
    first = re.match(r"[a-z]+", text)
    return first.group(0) if first and first.group(0) in values else None


def _prefix_match(text: str, aliases: dict[str, str]) -> str | None:
    """Accept values followed by a short explanation (``Question - to learn more``, ``Question, to...``)."""
    for alias in sorted(aliases, key=len, reverse=True):
        if re.match(re.escape(alias) + r"(?!\w)", text):
            return aliases[alias]
    return None


def render_candidate(schema: Schema, steps: dict[str, tuple[str, dict[str, str]]], response: str) -> str:
    """Write a candidate in the canonical format.

    Args:
        schema: the schema whose steps are written, in its order.
        steps: step name -> (free text, {field name: value}); steps missing here are left out.
        response: the reply to the seeker.

    Returns:
        The candidate text the parser reads back.

    >>> s = SCHEMAS["compeer"]
    >>> text = render_candidate(s, {"support_strategy": ("Ask.", {"strategy": "Question"})}, "Why?")
    >>> print(text)
    <support_strategy>
    Strategy: Question
    Ask.
    </support_strategy>
    <response>
    Why?
    </response>
    """
    blocks = []
    for spec in schema.steps:
        if spec.name not in steps:
            continue
        text, values = steps[spec.name]
        lines = [f"{f.name.capitalize()}: {values[f.name]}" for f in spec.fields if f.name in values]
        body = "\n".join([*lines, text.strip()] if text.strip() else lines)
        blocks.append(f"<{spec.name}>\n{body}\n</{spec.name}>")
    blocks.append(f"<{RESPONSE_TAG}>\n{response.strip()}\n</{RESPONSE_TAG}>")
    return "\n".join(blocks)
