"""The tolerant candidate parser: sections, fields, response and format completeness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.candidate import ParsedCandidate, parse_candidate
from services.core.schemas import SCHEMAS, Schema, render_candidate
from tests.guards import finishes_within

FAST = settings(max_examples=200, deadline=None)
COMPEER = SCHEMAS["compeer"]
CARE = SCHEMAS["care"]
REPLY = "That sounds really stressful. Has your manager given you any idea of when they will decide?"
COMPLETE = {
    "history_analysis": {"stage": "exploration"},
    "emotional_state": {"sentiment": "negative", "emotion": "anxiety", "intensity": "4"},
    "support_strategy": {"strategy": "Question"},
}


def fields_of(parsed: ParsedCandidate) -> dict[str, dict[str, str]]:
    return {name: step.fields for name, step in parsed.steps.items()}


# --- canonical examples -----------------------------------------------------------------------------


def test_compeer_example_is_complete() -> None:
    parsed = parse_candidate(COMPEER.example, COMPEER)
    assert parsed.complete and parsed.missing == []
    assert fields_of(parsed) == COMPLETE
    assert parsed.steps["history_analysis"].text.startswith("The seeker is on short-term disability")
    assert "Stage:" not in parsed.steps["history_analysis"].text  # field lines leave the free text
    assert parsed.response == REPLY
    assert parsed.schema == "compeer"


def test_care_example_is_complete() -> None:
    parsed = parse_candidate(CARE.example, CARE)
    assert parsed.complete
    assert fields_of(parsed) == {
        "context": {},
        "cognition": {},
        "emotion": {"sentiment": "negative", "emotion": "anxiety", "intensity": "4"},
        "support_plan": {"strategy": "Reflection of feelings"},
    }
    assert parsed.steps["cognition"].text.startswith("They believe")
    assert parsed.response == "It sounds like waiting for your manager is making you really anxious about your job."


# --- variants of the format that must parse as complete ----------------------------------------------

HEADINGS = """## Step 1: Conversation history analysis
The seeker fears losing the job.
Stage: exploration
## Step 2: Emotional state
Sentiment: negative
Emotion: anxiety
Intensity: 4
## Step 3: Support strategy
Strategy: Question
## Response
Has your manager said anything?"""

BOLD = """**History Analysis**
**Stage:** Exploration
The seeker fears losing the job.
**Emotional State**
**Sentiment**: Negative
**Emotion:** Anxiety
**Intensity:** high
**Support Strategy**
**Strategy:** Questions
**Response**
Has your manager said anything?"""

BULLETS = """### History analysis
- Stage: exploration
- The seeker fears losing the job.
### Emotional state
* Sentiment: negative
* Emotion: anxiety
* Intensity: 4/5
### Support strategy
\u2022 Strategy: Question
### Response
Has your manager said anything?"""

COLON_HEADINGS = """History analysis:
Stage: exploration
Emotional state:
Sentiment: negative
Emotion: anxiety
Intensity: 4
Support strategy:
Strategy: Question, to learn more
Response: Has your manager said anything?"""

STEP_NUMBERS = """### Step 1
Stage: exploration
### Step 2
Sentiment: negative; Emotion: anxiety; Intensity: 4
### Step 3
Strategy: Question
### Response
Has your manager said anything?"""

ODD_TAGS = """< History-Analysis >
Stage: exploration
</ History-Analysis >
<EMOTIONAL_STATE>
Sentiment: negative
Emotion: anxiety
Intensity: 4
</EMOTIONAL_STATE>
<Support Strategy>Strategy: Question</Support Strategy>
<  Response  >Has your manager said anything?</response>"""

ALIASED_TAGS = """<history>Stage: exploration</history>
<emotion>Sentiment: negative
Emotion type: anxiety
Emotion intensity: 4</emotion>
<strategy>Support strategy: Question</strategy>
<reply>Has your manager said anything?</reply>"""

THINK = """<think>
<history_analysis>
Stage: exploration
</history_analysis>
<emotional_state>
Sentiment: negative
Emotion: anxiety
Intensity: 4
</emotional_state>
<support_strategy>
Strategy: Question
</support_strategy>
</think>
<response>
Has your manager said anything?
</response>"""

OUTSIDE_TEXT = f"""Sure, here is my reasoning.
{render_candidate(COMPEER, {k: ("Some text.", v) for k, v in COMPLETE.items()}, "Has your manager said anything?")}
I hope this helps!"""

KEY_ALIASES = """<history_analysis>Support stage: exploration</history_analysis>
<emotional_state>Polarity: negative
Main emotion = anxiety
Emotional intensity\uff1a 4</emotional_state>
<support_strategy>Chosen strategy: Question</support_strategy>
<response>Has your manager said anything?</response>"""


@pytest.mark.parametrize(
    "text",
    [
        COMPEER.example,  # the canonical tag blocks
        COMPEER.example.upper().replace("ANXIETY", "anxiety"),  # upper-case tags and values
        HEADINGS,  # markdown headings with "Step N: title"
        BOLD,  # bold headings and bold keys (inside or outside the colon)
        BULLETS,  # bullet fields under ### headings
        COLON_HEADINGS,  # "Title:" headings and an inline "Response:" line
        STEP_NUMBERS,  # headings with only the step number, several fields on one line
        ODD_TAGS,  # spaced, hyphenated, mixed-case tags, tags sharing a line with their content
        ALIASED_TAGS,  # tag and key aliases (<history>, <emotion>, <reply>, "Emotion type")
        THINK,  # the steps inside a <think> wrapper
        OUTSIDE_TEXT,  # chatter before and after the blocks
        KEY_ALIASES,  # key aliases, "=" and a full-width colon
        COMPEER.example.replace("\n", "\r\n"),  # Windows line ends
    ],
)
def test_compeer_variants_are_complete(text: str) -> None:
    parsed = parse_candidate(text, COMPEER)
    assert parsed.missing == []
    assert fields_of(parsed) == COMPLETE
    assert parsed.response is not None and "manager" in parsed.response.lower()


CARE_HEADINGS = """## Context
Lost a job.
## Cognition
Thinks it is their fault.
## Emotion
**Sentiment:** negative
**Emotion:** sadness
**Intensity:** 3
## Support Plan
Strategy: Reflection of feelings
## Response
That sounds painful."""


def _swap(old: str, new: str, text: str = COMPEER.example) -> str:
    assert old in text
    return text.replace(old, new)


def _without(start: str, end: str, text: str = COMPEER.example) -> str:
    return text[: text.index(start)] + text[text.index(end) + len(end) :]


CARE_CONTEXT_LINE = CARE.example.split("\n")[1]
STEPS = ["history_analysis", "emotional_state", "support_strategy"]
EMOTION_FIELDS = ["emotional_state.sentiment", "emotional_state.emotion", "emotional_state.intensity"]


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        (CARE.example, []),  # canonical
        (CARE_HEADINGS, []),  # markdown headings; "Emotion" is both a step and a key
        (_swap("cognition>", "Cognitive>", CARE.example), []),  # tag alias
        (_swap(CARE_CONTEXT_LINE, "  ", CARE.example), ["context"]),  # a step without fields needs text
        (_swap("Reflection of feelings", "Venting", CARE.example), ["support_plan.strategy"]),  # not one of ESConv's
    ],
)
def test_care_variants(text: str, missing: list[str]) -> None:
    assert parse_candidate(text, CARE).missing == missing


# --- what is missing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("", [*STEPS, "response"]),  # empty candidate
        ("just a reply", [*STEPS, "response"]),  # no format at all
        (_without("<emotional_state>", "</emotional_state>"), ["emotional_state"]),  # one step left out
        (_without("<history_analysis>", "</support_strategy>"), STEPS),  # the reply only
        (_without("<response>", "</response>"), ["response"]),  # no response
        (_swap(REPLY, ""), ["response"]),  # empty response block
        (_swap(REPLY, "  \n\t"), ["response"]),  # blank response block
        (_swap("<response>\n", "<response>   \n"), []),  # spaces after the tag do not matter
        (_swap("Emotion: anxiety", "Emotion: joy"), ["emotional_state.emotion"]),  # value outside ESConv's emotions
        (_swap("Emotion: anxiety\n", ""), ["emotional_state.emotion"]),  # field left out
        (_swap("Intensity: 4", "Intensity: 4/10"), ["emotional_state.intensity"]),  # another scale
        (_swap("Stage: exploration", "Stage: closing"), ["history_analysis.stage"]),  # unknown stage
        (_swap("Strategy: Question", "Strategy: Empathy"), ["support_strategy.strategy"]),  # not one of the eight
        (_swap("Sentiment: negative\nEmotion: anxiety\nIntensity: 4\n", ""), EMOTION_FIELDS),  # no fields at all
        (_swap("<emotional_state>\n", "<emotional_state></emotional_state>\n"), ["emotional_state"]),  # empty block
    ],
)
def test_missing(text: str, missing: list[str]) -> None:
    parsed = parse_candidate(text, COMPEER)
    assert parsed.missing == missing
    assert parsed.complete is (missing == [])


def test_invalid_field_value_is_reported_with_its_text() -> None:
    step = parse_candidate(_swap("Emotion: anxiety", "Emotion: joy"), COMPEER).steps["emotional_state"]
    assert step.invalid == {"emotion": "joy"}
    assert "emotion" not in step.fields


def test_a_valid_value_later_in_the_step_replaces_an_invalid_one() -> None:
    text = _swap("Emotion: anxiety", "Emotion: joy\nEmotion: fear")
    step = parse_candidate(text, COMPEER).steps["emotional_state"]
    assert step.fields["emotion"] == "fear" and step.invalid == {}


SECOND_EMOTION = "<emotional_state>\nSentiment: negative\nEmotion: anger\nIntensity: 2\n</emotional_state>"


@pytest.mark.parametrize(
    ("text", "emotion", "response"),
    [
        (COMPEER.example + SECOND_EMOTION, "anxiety", "That sounds"),  # a second step block is ignored
        (COMPEER.example + "<response>Another.</response>", "anxiety", "That sounds"),  # a second response too
        (SECOND_EMOTION + COMPEER.example, "anger", "That sounds"),  # the first written wins, not the last
        ("## Response\nFirst.\n## Emotional state\nEmotion: fear\n## Response\nSecond.", "fear", "First."),  # headings
    ],
)
def test_duplicated_sections_first_wins(text: str, emotion: str, response: str) -> None:
    parsed = parse_candidate(text, COMPEER)
    assert parsed.steps["emotional_state"].fields["emotion"] == emotion
    assert parsed.response is not None and parsed.response.startswith(response)


@pytest.mark.parametrize(
    ("text", "response"),
    [
        ("<response>Hi there.</response>", "Hi there."),  # one line
        ("<response>\nHi.\n\nHow are you?\n</response>", "Hi.\n\nHow are you?"),  # paragraphs kept
        (
            "<response>\n## Step 1: breathe\nEmotion: calm\n</response>",
            "## Step 1: breathe\nEmotion: calm",
        ),  # headings inside a tag are text
        ("<response>I <b>really</b> care.</response>", "I <b>really</b> care."),  # unknown tags stay in the line
        ("<response>\nI <b>really</b> care.\n</response>", "I <b>really</b> care."),  # ... and are not written twice
        ("<response>\nI <3 you.\n</response>", "I <3 you."),  # "<" that opens no tag
        ("<response>\nHi.", "Hi."),  # unclosed response tag runs to the end
        ("Response: Hi.", "Hi."),  # inline response label
        ("**Reply:** Hi.", "Hi."),  # bold response alias
        ("<answer>Hi.</answer>", "Hi."),  # response alias tag
        ("## Response\nTry this.\nStep 1 is to breathe.", "Try this.\nStep 1 is to breathe."),  # a sentence, no heading
    ],
)
def test_response_extraction(text: str, response: str) -> None:
    assert parse_candidate(text, COMPEER).response == response


@pytest.mark.parametrize(
    ("heading", "step"),
    [
        ("Step 2: Feelings", "emotional_state"),  # number and colon, unknown title
        ("Step 2 - Feelings", "emotional_state"),  # number and dash
        ("**Step 2 Feelings**", "emotional_state"),  # bold
        ("## Step 2", "emotional_state"),  # number only, markdown
        ("Step 2", "emotional_state"),  # number only
        ("Step 2 Emotional state", "emotional_state"),  # number and a known title
        ("Step 3 is to ask.", None),  # a sentence that starts like a heading
        ("Step 9: Feelings", None),  # no such step
    ],
)
def test_numbered_headings(heading: str, step: str | None) -> None:
    parsed = parse_candidate(f"{heading}\nEmotion: fear\nStrategy: Question\nStage: action", COMPEER)
    assert list(parsed.steps) == ([] if step is None else [step])


def test_unknown_tags_stay_in_the_step_text() -> None:
    text = "<history_analysis>\nThe seeker <i>really</i> fears it.\nStage: exploration\n</history_analysis>"
    assert parse_candidate(text, COMPEER).steps["history_analysis"].text == "The seeker <i>really</i> fears it."


def test_text_outside_sections_is_ignored() -> None:
    parsed = parse_candidate("I will think first.\n" + COMPEER.example + "\nDone.", COMPEER)
    assert "I will think first" not in parsed.steps["history_analysis"].text
    assert parsed.response is not None and "Done." not in parsed.response


def test_not_a_string_gives_everything_missing() -> None:
    parsed = parse_candidate(None, COMPEER)  # type: ignore[arg-type]
    assert parsed.missing == ["history_analysis", "emotional_state", "support_strategy", "response"]


@pytest.mark.parametrize(
    "text",
    [
        " " * 20_000 + "1",  # spaces before a non-heading (three adjacent \s* in the heading pattern)
        "<" + " " * 20_000 + "1",  # spaces inside an unfinished tag
        "<emotional_state>\nEmotion" + " " * 20_000 + "x",  # spaces between a key and no colon
        "## " + "Step " * 5_000,  # a heading that never ends
        "<a>" * 20_000,  # many unknown tags on one line
        "<response>" * 20_000,  # many section tags on one line
        "**" * 20_000,  # bold markers only
    ],
)
def test_pathological_lines_finish(text: str) -> None:
    with finishes_within(10):
        parsed = parse_candidate(text, COMPEER)
    assert isinstance(parsed, ParsedCandidate)


# --- properties -----------------------------------------------------------------------------------

_FRAGMENTS = [
    *(f"<{s.name}>" for schema in SCHEMAS.values() for s in schema.steps),
    *(f"</{s.name}>" for schema in SCHEMAS.values() for s in schema.steps),
    "<response>", "</response>", "< Emotional-State >", "</ EMOTIONAL_STATE >", "<think>", "</think>", "<", ">", "</",
    "## Step 2: Emotional state", "**Emotional State**", "### Step 1", "Step 3:", "#######", "Response:", "**Reply:**",
    "Emotion: ", "**Emotion:** ", "Stage: ", "Strategy: ", "Intensity: ", "Sentiment: ", "Emotion type = ", "\uff1a",
    "anxiety", "exploration", "Question", "4/5", "9/10", "joy", "- ", "* ", "\u2022 ", "**", "__", ";", "|",
    "\n", "\r\n", "\u2028", " " * 40, "\t", "Step ", "1", "\u0663", "\u212a", "\u017f", "\u0130",
]  # fmt: skip
_TEXT = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=20)), max_size=40).map("".join)
_SCHEMA = st.sampled_from([COMPEER, CARE])


def _check_invariants(parsed: ParsedCandidate, schema: Schema) -> None:
    names = {s.name for s in schema.steps}
    allowed_missing = names | {"response"} | {f"{s.name}.{f.name}" for s in schema.steps for f in s.fields}
    assert set(parsed.missing) <= allowed_missing
    assert len(parsed.missing) == len(set(parsed.missing))
    assert parsed.complete is (parsed.missing == [])
    assert set(parsed.steps) <= names
    for step in parsed.steps.values():
        spec = schema.step(step.name)
        for f in spec.fields:
            assert (f.name in step.fields) is (f"{spec.name}.{f.name}" not in parsed.missing)
            assert step.fields.get(f.name) in (None, *f.values)
    assert parsed.response is None or (parsed.response.strip() == parsed.response != "")
    assert ("response" in parsed.missing) is (parsed.response is None)


@FAST
@given(text=st.text(max_size=2_000), schema=_SCHEMA)
def test_any_text_parses(text: str, schema: Schema) -> None:
    _check_invariants(parse_candidate(text, schema), schema)


@FAST
@given(text=_TEXT, schema=_SCHEMA)
def test_format_fragments_parse(text: str, schema: Schema) -> None:
    _check_invariants(parse_candidate(text, schema), schema)


@FAST
@given(piece=st.sampled_from(_FRAGMENTS), n=st.integers(500, 20_000), tail=st.sampled_from(["", "x", "1", ":", ">"]))
def test_very_long_lines_parse(piece: str, n: int, tail: str) -> None:
    with finishes_within(20):
        parsed = parse_candidate(piece * n + tail, COMPEER)
    _check_invariants(parsed, COMPEER)


# Free text that cannot be read as a tag (no "<"), a field (no ":" or "=") or a line break other than "\n".
_PLAIN = st.text(alphabet=st.sampled_from("abcXYZ019 .,!?'-\n\u00e9"), max_size=60).filter(lambda t: t.strip() != "")


@st.composite
def _rendered(draw: st.DrawFn) -> tuple[Schema, dict[str, tuple[str, dict[str, str]]], str]:
    schema = draw(_SCHEMA)
    chosen = draw(st.lists(st.sampled_from(schema.steps), unique=True))
    steps = {
        spec.name: (draw(_PLAIN), {f.name: draw(st.sampled_from(f.values)) for f in spec.fields}) for spec in chosen
    }
    return schema, steps, draw(_PLAIN)


@FAST
@given(case=_rendered())
def test_rendered_candidates_parse_back(case: tuple[Schema, dict[str, tuple[str, dict[str, str]]], str]) -> None:
    schema, steps, response = case
    parsed = parse_candidate(render_candidate(schema, steps, response), schema)
    assert {name: s.fields for name, s in parsed.steps.items()} == {name: v for name, (_, v) in steps.items()}
    assert {name: s.text for name, s in parsed.steps.items()} == {name: t.strip() for name, (t, _) in steps.items()}
    assert parsed.response == response.strip()
    assert parsed.missing == [s.name for s in schema.steps if s.name not in steps]
    assert parsed.complete is (len(steps) == len(schema.steps))
