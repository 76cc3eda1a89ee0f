"""Parse a candidate's text into its reasoning steps, their fields and its response.

The canonical format is one tag block per step and ``<response>`` last (see ``docs/format.md``), but
policies drift: they change case, add spaces or hyphens to tag names, write markdown headings
(``## Emotional state``, ``**Step 2: Emotional state**``) or bold keys (``**Emotion:** anxiety``).
The parser accepts all of these, never raises, and reports what is missing: that report is the format
completeness component of the reward.

>>> from services.core.schemas import SCHEMAS
>>> p = parse_candidate(SCHEMAS["compeer"].example, SCHEMAS["compeer"])
>>> p.complete, p.steps["emotional_state"].fields["emotion"]
(True, 'anxiety')
>>> parse_candidate("just a reply", SCHEMAS["compeer"]).missing
['history_analysis', 'emotional_state', 'support_strategy', 'response']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.core.schemas import RESPONSE_TAG, Schema, StepSpec, normalize_value

_RESPONSE_ALIASES = ("response", "reply", "answer", "final_response", "final_reply", "supporter")
_FIELD_KEY_ALIASES = {
    "stage": ("stage", "support stage", "support_stage", "current stage"),
    "sentiment": ("sentiment", "polarity"),
    "emotion": ("emotion", "emotion type", "emotion_type", "main emotion", "emotion category"),
    "intensity": ("intensity", "emotion intensity", "emotion_intensity", "emotional intensity"),
    "strategy": ("strategy", "support strategy", "support_strategy", "chosen strategy"),
}
_TAG = re.compile(r"<\s*+(/?)\s*+([A-Za-z][A-Za-z0-9 _\-]{0,40}?)\s*+>")
_HEADING = re.compile(
    r"^\s*+(?P<hashes>#{1,6})?\s*+(?P<bold>\*\*|__)?\s*+"
    r"(?:step\s*+(?P<num>\d)\s*+(?P<sep>[:.)\-\u2013\u2014]*+)\s*+)?"
    r"(?P<name>[A-Za-z][A-Za-z _\-/]{1,40})?\s*(?:\*\*|__)?\s*(?P<colon>[:\uff1a])?\s*(?:\*\*|__)?"
    r"\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
_NAME_NORM = re.compile(r"[\s\-/]+")


@dataclass
class ParsedStep:
    """One step as the candidate wrote it.

    Attributes:
        name: the schema's step name.
        text: the step's free text (field lines removed).
        fields: canonical values of the fields found.
        invalid: fields whose value names nothing allowed, with the text written.
    """

    name: str
    text: str
    fields: dict[str, str] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)


@dataclass
class ParsedCandidate:
    """A candidate split into steps and response, with what is missing for format completeness."""

    schema: str
    steps: dict[str, ParsedStep]
    response: str | None
    missing: list[str]

    @property
    def complete(self) -> bool:
        """Every step, every required field and a non-empty response are present."""
        return not self.missing


def _norm_name(raw: str) -> str:
    return _NAME_NORM.sub("_", raw.strip().lower()).strip("_")


def _section_names(schema: Schema) -> dict[str, str]:
    """Normalised alias -> step name (or ``response``)."""
    names: dict[str, str] = {}
    for spec in schema.steps:
        for alias in (spec.name, _norm_name(spec.title), *spec.aliases):
            names.setdefault(_norm_name(alias), spec.name)
    for alias in _RESPONSE_ALIASES:
        names.setdefault(alias, RESPONSE_TAG)
    return names


def _is_field_key(name: str) -> bool:
    key = name.replace("_", " ")
    return any(key in aliases for aliases in _FIELD_KEY_ALIASES.values())


def _heading(line: str, names: dict[str, str], schema: Schema) -> tuple[str, str] | None:
    """Return (section, rest of line) when ``line`` is a markdown or ``Name:`` heading."""
    match = _HEADING.match(line)
    if match is None:
        return None
    name = _norm_name(match.group("name") or "")
    section = names.get(name)
    num = match.group("num")
    if section is None and num is not None and 1 <= int(num) <= len(schema.steps):
        if match.group("name") and not (match.group("hashes") or match.group("bold") or match.group("sep")):
            return None  # "Step 1 is to breathe." is a sentence; "Step 1: Feelings" is a heading
        section = schema.steps[int(num) - 1].name
    if section is None:
        return None
    rest = match.group("rest").strip()
    decorated = bool(match.group("hashes") or match.group("bold") or num)
    if _is_field_key(name) and rest:
        return None  # "Emotion: anxiety" is a field line, not a heading
    if not decorated and match.group("colon") is None:
        return None
    if rest and section != RESPONSE_TAG and not decorated:
        return None
    return section, rest


def _split_sections(text: str, schema: Schema) -> dict[str, str]:
    """Cut the text into known sections; the first occurrence of each wins."""
    names = _section_names(schema)
    sections: dict[str, list[str]] = {}
    current: str | None = None
    in_tag = False

    def start(section: str) -> None:
        nonlocal current
        current = section if section not in sections else None
        if current is not None:
            sections[current] = []

    for line in text.splitlines():
        handled_tag = False
        pos = 0  # where the text not yet given to a section starts
        for tag in _TAG.finditer(line):
            section = names.get(_norm_name(tag.group(2)))
            if section is None:
                continue  # an unknown tag (<b>, <br>) stays in the text around it
            handled_tag = True
            before, pos = line[pos : tag.start()], tag.end()
            if current is not None and before.strip():
                sections[current].append(before)
            if tag.group(1):  # closing tag
                if current == section or in_tag:
                    current, in_tag = None, False
            else:
                start(section)
                in_tag = current is not None
        if handled_tag:
            if current is not None and line[pos:].strip():
                sections[current].append(line[pos:])
            continue
        heading = None if in_tag else _heading(line, names, schema)
        if heading is not None and heading[0] != current:
            start(heading[0])
            if current is not None and heading[1]:
                sections[current].append(heading[1])
        elif current is not None:
            sections[current].append(line)
    return {name: "\n".join(lines).strip() for name, lines in sections.items()}


def _field_pattern(name: str) -> re.Pattern[str]:
    keys = "|".join(re.escape(k).replace(r"\ ", r"[\s_]+") for k in _FIELD_KEY_ALIASES[name])
    return re.compile(
        rf"(?:^|[\s(*_\-\u2022])(?:{keys})\s*+(?:\*\*|__)?\s*+[:\uff1a=]\s*(?:\*\*|__)?\s*([^\n;|]+)",
        re.IGNORECASE,
    )


_FIELD_PATTERNS = {name: _field_pattern(name) for name in _FIELD_KEY_ALIASES}


def _parse_step(spec: StepSpec, body: str) -> ParsedStep:
    step = ParsedStep(name=spec.name, text="")
    free_lines = []
    for line in body.splitlines():
        is_field = False
        for f in spec.fields:
            match = _FIELD_PATTERNS[f.name].search(line)
            if match is None:
                continue
            is_field = True
            if f.name in step.fields:
                continue
            raw = match.group(1).strip().rstrip(")")
            value = normalize_value(f.name, raw)
            if value is None:
                step.invalid.setdefault(f.name, raw[:80])
            else:
                step.fields[f.name] = value
                step.invalid.pop(f.name, None)
        if not is_field:
            free_lines.append(line)
    step.text = "\n".join(free_lines).strip()
    return step


def parse_candidate(text: str, schema: Schema) -> ParsedCandidate:
    """Split a candidate into steps, fields and response, and list what is missing.

    Args:
        text: the policy's whole output.
        schema: the reasoning schema the policy was asked to follow.

    Returns:
        The parsed candidate. ``missing`` names absent steps (``emotional_state``), absent or
        invalid fields (``emotional_state.emotion``) and ``response``; it is empty when the
        format is complete. Never raises.
    """
    sections = _split_sections(text if isinstance(text, str) else "", schema)
    steps: dict[str, ParsedStep] = {}
    missing: list[str] = []
    for spec in schema.steps:
        body = sections.get(spec.name, "")
        if not body:
            missing.append(spec.name)
            continue
        step = _parse_step(spec, body)
        steps[spec.name] = step
        missing.extend(f"{spec.name}.{f.name}" for f in spec.fields if f.name not in step.fields)
        if not spec.fields and not step.text:
            missing.append(spec.name)
    response = sections.get(RESPONSE_TAG) or None
    if response is None:
        missing.append(RESPONSE_TAG)
    return ParsedCandidate(schema=schema.name, steps=steps, response=response, missing=missing)
