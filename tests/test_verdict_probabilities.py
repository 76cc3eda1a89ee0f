"""Reading the judge's probabilities from the verdict token's alternatives: tables, and no input crashes it."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.judge_prompts import judgment_regex
from services.core.judgments import parse_preference, parse_step_judgment, read_answer
from services.core.types import TurnKind
from services.core.verdict_probabilities import (
    ANSWER_LINES,
    Alternative,
    TokenPosition,
    option_probabilities,
    with_probabilities,
)

FAST = settings(max_examples=400, deadline=None)
STEP = ANSWER_LINES["step"]
PREF = ANSWER_LINES["preference"]
LN = math.log


def tail(*tokens: str, alternatives: dict[int, list[Alternative]]) -> list[TokenPosition]:
    """Positions of these tokens; the ones at the given indices have those alternatives (others none)."""
    return [(text, alternatives.get(i, [])) for i, text in enumerate(tokens)]


def positions(tokens: str, alternatives: list[tuple[str, float]]) -> list[TokenPosition]:
    """The tokens (``|`` between them), each with these alternatives given as probabilities (only the
    deciding position's are read)."""
    logprobs = [(text, math.log(p) if p > 0 else -math.inf) for text, p in alternatives]
    return [(text, logprobs) for text in tokens.split("|")]


@pytest.mark.parametrize(
    ("tokens", "alternatives", "line", "option", "p"),
    [
        ("Fits.\n|Verdict|:| True", [(" True", 0.6), (" False", 0.4)], STEP, "True", 0.6),  # value and blank: 1 token
        ("Verdict|:| |False", [("False", 0.7), ("True", 0.1)], STEP, "False", 0.875),  # the blank alone: next decides
        # a value over several tokens: the first decides, and every prefix counts for its option
        ("Verdict:| T|rue", [(" T", 0.5), (" Tr", 0.1), (" F", 0.2), (" False", 0.2)], STEP, "True", 0.6),
        # a token straddling the label's end; an alternative that would not finish the label is out
        ("Verdict|: F|alse", [(": F", 0.3), (": True", 0.1), (",", 0.6)], STEP, "False", 0.75),
        ("Verdict:| True", [(" True", 0.4), (" ", 0.5), (" False", 0.1)], STEP, "True", 0.8),  # a blank: for neither
        # words that are no option (an unmasked engine's alternatives) count for none
        ("Verdict:| True", [(" True", 0.3), (" Correct", 0.5), (" Trueish", 0.1), (" False", 0.1)], STEP, "True", 0.75),
        ("Verdict|:|True", [("True", 0.9), ("False", 0.1)], STEP, "True", 0.9),  # a decoder that drops leading blanks
        ("Verdict:| False", [(" False", 0.3), (" False", 0.3), (" True", 0.4)], STEP, "False", 0.6),  # same text twice
        ("Verdict:| True|</s>", [(" True", 0.5), (" False", 0.5)], STEP, "True", 0.5),  # end-of-sequence after
        # the last label counts: the rationale may quote one
        ("says Verdict: False|\nVerdict:| True", [(" True", 0.2), (" False", 0.8)], STEP, "True", 0.2),
        ("Verdict:| True", [(" True", 1.0), (" False", 0.0)], STEP, "True", 1.0),  # -inf is probability 0
        # a preference letter; "And" begins with A but is a word, not option A
        ("Ok.\n|Preference|:| B", [(" B", 0.4), (" A", 0.1), (" C", 0.3), (" And", 0.2)], PREF, "B", 0.5),
        ("Preference:| D", [(" D", 0.5), (" A", 0.5)], PREF, "D", 0.5),  # an option no alternative begins is 0
    ],
)
def test_the_deciding_alternatives_give_the_probabilities(
    tokens: str, alternatives: list[tuple[str, float]], line: tuple[str, tuple[str, ...]], option: str, p: float
) -> None:
    read = option_probabilities(positions(tokens, alternatives), *line)
    assert read is not None
    assert read.option == option and read.probabilities[option] == pytest.approx(p)
    assert set(read.probabilities) == set(line[1]) and sum(read.probabilities.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("logprobs", "p_true"),
    [
        ([0.0, -9999.0], 1.0),  # vLLM's server sends -9999 for -inf
        ([math.log(0.5), math.nan], 1.0),  # NaN is no log-probability: left out
        ([math.log(0.5), 3.0], 1.0),  # nor is a clearly positive one
        ([1e-7, math.log(0.5)], 2 / 3),  # a rounding error above 0 is 0
        ([-1e300, -1e300], None),  # both underflow to 0: the written option has no mass
        ([math.nan, 0.0], None),  # the written option's is not a log-probability: no mass
    ],
)
def test_log_probabilities_that_are_not_ones(logprobs: list[float], p_true: float | None) -> None:
    tokens = tail("Verdict:", " True", alternatives={1: [(" True", logprobs[0]), (" False", logprobs[1])]})
    read = option_probabilities(tokens, *STEP)
    got = None if read is None else read.probabilities["True"]
    assert got == (None if p_true is None else pytest.approx(p_true))


@pytest.mark.parametrize(
    ("tokens", "line"),
    [
        (tail("Fits.", alternatives={0: [("Fits.", 0.0)]}), STEP),  # no label
        (tail("Verdict:", alternatives={0: [("Verdict:", 0.0)]}), STEP),  # a label and nothing after it
        (tail("Verdict:", " Maybe", alternatives={1: [(" Maybe", 0.0), (" True", -1.0)]}), STEP),  # no option
        (tail("Verdict:", " Tr", alternatives={1: [(" Tr", 0.0)]}), STEP),  # cut short: no whole option
        (tail("Verdict:", " True", alternatives={}), STEP),  # no alternatives at the deciding position
        (tail("Verdict:", " True", alternatives={1: [(" False", -0.1)]}), STEP),  # the written option has no mass
        (tail("Verdict:", " True", alternatives={1: [(" True", math.nan)]}), STEP),  # nothing that is a probability
        (tail("Verdict:", " True", alternatives={1: [(" True", LN(0.5))]}), PREF),  # another kind's label
        ([], STEP),  # nothing at all
    ],
)
def test_what_cannot_be_read_gives_none(tokens: list[TokenPosition], line: tuple[str, tuple[str, ...]]) -> None:
    assert option_probabilities(tokens, *line) is None


@pytest.mark.parametrize("kind", ["step", "preference"])
def test_the_answer_lines_are_the_ones_the_regex_forces(kind: TurnKind) -> None:
    label, options = ANSWER_LINES[kind]
    for option in options:
        assert re.fullmatch(judgment_regex(kind), f"A rationale.\n{label} {option}")
    assert not re.fullmatch(judgment_regex(kind), f"A rationale.\n{label} Other")


def test_a_step_gets_p_correct_when_the_tokens_agree_with_the_text() -> None:
    tokens = tail("Fits.\n", "Verdict:", " False", alternatives={2: [(" False", LN(0.7)), (" True", LN(0.3))]})
    judged = with_probabilities(parse_step_judgment("Fits.\nVerdict: False"), tokens)
    assert judged.verdict is False and judged.p_correct == pytest.approx(0.3)


def test_a_preference_gets_the_probability_of_each_named_option() -> None:
    alternatives = [(" C", LN(0.5)), (" A", LN(0.2)), (" B", LN(0.2)), (" D", LN(0.1))]
    judged = with_probabilities(
        parse_preference("Both fine.\nPreference: C"), tail("Preference:", " C", alternatives={1: alternatives})
    )
    assert judged.preference == "equal" and judged.probabilities is not None
    assert judged.probabilities == pytest.approx({"equal": 0.5, "first": 0.2, "second": 0.2, "neither": 0.1})


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        # the parser reads the text's last verdict word; the tokens' answer line says otherwise
        ("Fits.\nVerdict: False", tail("Verdict:", " True", alternatives={1: [(" True", 0.0)]})),
        ("hmm", tail("Verdict:", " True", alternatives={1: [(" True", 0.0)]})),  # the text has no verdict
        ("Fits.\nVerdict: True", None),  # the backend gave no tokens
        ("Fits.\nVerdict: True", []),  # or an empty list
        ("Fits.\nVerdict: True", tail("Fits.", alternatives={})),  # tokens without the answer line
    ],
)
def test_a_step_keeps_no_probability_when_the_tokens_do_not_back_its_verdict(
    text: str, tokens: list[TokenPosition] | None
) -> None:
    judgment = parse_step_judgment(text)
    assert with_probabilities(judgment, tokens) == judgment


def test_a_preference_the_tokens_contradict_gets_none() -> None:
    judgment = parse_preference("A is warmer. Preference: A")
    tokens = tail("Preference:", " B", alternatives={1: [(" B", 0.0)]})
    assert with_probabilities(judgment, tokens).probabilities is None


def test_alternatives_may_be_any_iterable_read_once() -> None:
    def alternatives() -> object:
        yield " True", LN(0.25)
        yield " False", LN(0.75)

    tokens: list[TokenPosition] = [("Verdict:", []), (" False", alternatives())]  # type: ignore[list-item]
    read = option_probabilities(tokens, *STEP)
    assert read is not None and read.probabilities["False"] == pytest.approx(0.75)


FRAGMENTS = [
    "Verdict",
    "Preference",
    ":",
    " ",
    "True",
    "False",
    " T",
    "rue",
    " F",
    "alse",
    "A",
    " B",
    "\n",
    "x",
    ": T",
    "",
]
fragment = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12))
logprob = st.floats(allow_nan=True, allow_infinity=True)
position = st.tuples(fragment, st.lists(st.tuples(fragment, logprob), max_size=6))


@FAST
@given(tokens=st.lists(position, max_size=30), kind=st.sampled_from(["step", "preference"]))
def test_garbage_never_raises_and_what_comes_back_is_a_distribution(
    tokens: list[TokenPosition], kind: TurnKind
) -> None:
    label, options = ANSWER_LINES[kind]
    read = option_probabilities(tokens, label, options)
    if read is not None:
        assert read.option in options and set(read.probabilities) == set(options)
        assert all(0.0 <= p <= 1.0 for p in read.probabilities.values())
        assert sum(read.probabilities.values()) == pytest.approx(1.0)
        assert read.probabilities[read.option] > 0
    text = "".join(t for t, _ in tokens)
    judged = with_probabilities(read_answer(kind, text), tokens)
    assert judged.text == text


@st.composite
def tokenised_answer(draw: st.DrawFn) -> tuple[TurnKind, str, float, list[TokenPosition]]:
    """A structured answer cut into tokens anywhere, with the judge's distribution at every position."""
    kind: TurnKind = draw(st.sampled_from(["step", "preference"]))
    label, options = ANSWER_LINES[kind]
    option = draw(st.sampled_from(options))
    rationale = draw(st.text(st.characters(exclude_characters="\n"), min_size=1, max_size=40))
    text = f"{rationale}\n{label} {option}"
    cuts = sorted(set(draw(st.lists(st.integers(1, len(text) - 1), max_size=len(text)))))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    weight = draw(st.floats(0.01, 0.99))
    others = [o for o in options if o != option]
    value_start = len(text) - len(option)
    tokens: list[TokenPosition] = []
    at = 0
    for piece in pieces:
        # What the regex allows here: this piece, and where the value starts, the other options
        # spelled from this position on.
        alternatives: list[Alternative] = [(piece, LN(weight))]
        if at <= value_start < at + len(piece):
            alternatives += [(text[at:value_start] + o, LN((1 - weight) / len(others))) for o in others]
        tokens.append((piece, alternatives))
        at += len(piece)
    return kind, option, weight, tokens


@FAST
@given(answer=tokenised_answer())
def test_any_tokenisation_of_a_structured_answer_reads_its_option(
    answer: tuple[TurnKind, str, float, list[TokenPosition]],
) -> None:
    kind, option, weight, tokens = answer
    label, options = ANSWER_LINES[kind]
    read = option_probabilities(tokens, label, options)
    assert read is not None and read.option == option
    assert read.probabilities[option] == pytest.approx(weight)
    text = "".join(t for t, _ in tokens)
    judged = with_probabilities(read_answer(kind, text), tokens)
    if kind == "step":
        assert isinstance(judged.p_correct, float)
        assert judged.p_correct == pytest.approx(weight if option == "True" else 1 - weight)
    else:
        assert judged.probabilities is not None and sum(judged.probabilities.values()) == pytest.approx(1.0)
