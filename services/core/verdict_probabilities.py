"""The judge's probability of each verdict, read from the log-probabilities of the token that wrote it.

Under structured outputs every judgment ends in its answer line, ``Verdict: True|False`` or
``Preference: A|B|C|D`` (:func:`services.core.judge_prompts.judgment_regex`). A generative backend
that asks its engine for the top log-probabilities of each generated token hands them here as a list
of positions, each the text of the token written and its alternatives ``(text, logprob)`` (the token
written among them). The position that decides the answer is the first token after the last label
(``Verdict:``) that writes a character of the value; blanks between label and value are skipped, and a
token may straddle the label's end (``": T"``). Each alternative at that position is read as the
text written so far plus its own text: one that begins exactly one option (``" T"``, ``"Tr"``,
``" True"``, ``"A"``) counts for that option, one that begins several or none (a blank ``" "``, an
illegal token) counts for none. The option's probability is the sum of its alternatives' probabilities,
renormalised over the options.

That is the judge's own distribution over the options when the engine reports log-probabilities of the
legal tokens after the grammar's mask (vLLM's ``raw_logprobs``: the bitmask is applied to the logits
before they are computed, so the legal tokens' probabilities are the model's, renormalised over what
the regex allows; their ratios are the model's, whatever the sampling temperature). Once the value's
first token is written the regex forces the rest, so the probability of that token is the probability
of its option. A blank alternative that begins every option is left out, as if it would split the
same way; alternatives outside the top ``k`` are missing, which only matters when the judge spreads
its mass over many spellings of one value.

Nothing here raises: a position, a label or an option that cannot be found gives None, and so do
log-probabilities that are not ones (NaN, positive) or that give the written option no mass.

Here " True" (0.8) and " T" (0.05) begin True, " False" (0.2) begins False:

>>> tokens = [("Fits", [("Fits", -0.1)]), (".\\n", [(".\\n", -0.2)]), ("Verdict", [("Verdict", 0.0)]),
...           (":", [(":", 0.0)]), (" True", [(" True", -0.2231), (" False", -1.6094), (" T", -2.9957)])]
>>> read = option_probabilities(tokens, "Verdict:", ("True", "False"))
>>> read.option, round(read.probabilities["True"], 2), round(read.probabilities["False"], 2)
('True', 0.81, 0.19)
>>> option_probabilities(tokens[:3], "Verdict:", ("True", "False")) is None  # no answer line
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import overload

from services.core.judgments import PREFERENCE_OPTIONS, Judgment, PreferenceJudgment, StepJudgment
from services.core.types import TurnKind

#: One alternative at a position: the token's text and its log-probability.
Alternative = tuple[str, float]
#: One generated position: the text of the token written, and its alternatives (the written one included;
#: read once, and only at the position that decides the answer).
TokenPosition = tuple[str, Iterable[Alternative]]

#: Each kind of answer line: its label and the values the regex allows after it (one blank between).
ANSWER_LINES: dict[TurnKind, tuple[str, tuple[str, ...]]] = {
    "step": ("Verdict:", ("True", "False")),
    "preference": ("Preference:", tuple(PREFERENCE_OPTIONS)),
}
_BLANKS = " \t"
# A log-probability a little above 0 is rounding; one well above is not a log-probability.
_LOGPROB_SLACK = 1e-3


@dataclass(frozen=True)
class OptionProbabilities:
    """The option an answer line wrote and the judge's probability of each option.

    Attributes:
        option: the value written after the label.
        probabilities: every option's probability (they sum to 1; an option no alternative began is 0).
    """

    option: str
    probabilities: dict[str, float]


def _options_begun(value: str, options: Sequence[str]) -> list[str]:
    """The options ``value`` (text after the label, blanks stripped) is the beginning of, or ends."""
    return [
        option
        for option in options
        if option.startswith(value) or (value.startswith(option) and not value[len(option) : len(option) + 1].isalnum())
    ]


def _decision(texts: Sequence[str], label: str, options: Sequence[str]) -> tuple[int, str, str, str] | None:
    """Where the value after the last label is decided: (position, text before it, text up to the
    label's end, option written)."""
    written = "".join(texts)
    at = written.rfind(label) if label else -1
    if at < 0:
        return None
    end = at + len(label)
    value = written[end:].lstrip(_BLANKS)
    chosen = [option for option in _options_begun(value, options) if value.startswith(option)] if value else []
    if len(chosen) != 1:
        return None
    start = 0
    for index, text in enumerate(texts):
        stop = start + len(text)
        if stop > end and written[end:stop].lstrip(_BLANKS):
            return index, written[:start], written[:end], chosen[0]
        start = stop
    return None  # not reached: a value was found after the label


def deciding_position(tokens: Sequence[TokenPosition], label: str, options: Sequence[str]) -> int | None:
    """The index of the token that decides the answer line's value: the first after the last ``label``
    that writes a character of it; None when there is no label followed by one of ``options``.

    >>> deciding_position([("Verdict", []), (":", []), (" ", []), ("Tr", []), ("ue", [])], *ANSWER_LINES["step"])
    3
    """
    found = _decision([position[0] for position in tokens], label, options)
    return None if found is None else found[0]


def _probability(logprob: float) -> float | None:
    """The probability of a log-probability; None for what is not one (NaN, clearly positive)."""
    if not isinstance(logprob, (int, float)) or math.isnan(logprob) or logprob > _LOGPROB_SLACK:
        return None
    return math.exp(min(float(logprob), 0.0))


def option_probabilities(
    tokens: Sequence[TokenPosition], label: str, options: Sequence[str]
) -> OptionProbabilities | None:
    """The judge's probability of each option of an answer line, from its tokens' top log-probabilities.

    Args:
        tokens: the generated positions in order (all of them, or a tail that holds the answer line):
            each the text of the token written and its alternatives ``(text, logprob)``.
        label: the answer line's label, e.g. ``"Verdict:"``; its last occurrence counts.
        options: the values allowed after it, e.g. ``("True", "False")``.

    Returns:
        The option written and every option's probability; None when the label, the value or the
        deciding position cannot be found, or its alternatives give the written option no mass.

    >>> tokens = [("Preference", []), (": ", []), ("B", [("B", -0.5), ("A", -1.0), ("C", -2.0), ("x", -0.9)])]
    >>> read = option_probabilities(tokens, "Preference:", "ABCD")
    >>> read.option, {k: round(v, 2) for k, v in read.probabilities.items()}
    ('B', {'A': 0.33, 'B': 0.55, 'C': 0.12, 'D': 0.0})
    """
    found = _decision([position[0] for position in tokens], label, options)
    if found is None:
        return None
    index, before, head, chosen = found
    mass = dict.fromkeys(options, 0.0)
    for text, logprob in tokens[index][1]:
        written = before + text
        if not written.startswith(head):  # an alternative that would not have finished the label
            continue
        value = written[len(head) :].lstrip(_BLANKS)
        begun = _options_begun(value, options) if value else []
        p = _probability(logprob)
        if len(begun) == 1 and p is not None:
            mass[begun[0]] += p
    total = sum(mass.values())
    if not (total > 0 and mass[chosen] > 0 and math.isfinite(total)):
        return None
    return OptionProbabilities(chosen, {option: m / total for option, m in mass.items()})


@overload
def with_probabilities(judgment: StepJudgment, tokens: Sequence[TokenPosition] | None) -> StepJudgment: ...
@overload
def with_probabilities(judgment: PreferenceJudgment, tokens: Sequence[TokenPosition] | None) -> PreferenceJudgment: ...
@overload
def with_probabilities(judgment: Judgment, tokens: Sequence[TokenPosition] | None) -> Judgment: ...
def with_probabilities(judgment: Judgment, tokens: Sequence[TokenPosition] | None) -> Judgment:
    """The judgment with the probabilities its answer's tokens carry, when they agree with it.

    Args:
        judgment: what the parser read from the answer's text.
        tokens: the answer's generated positions with their top log-probabilities; None when the
            backend has none.

    Returns:
        The judgment with ``p_correct`` (a step) or ``probabilities`` (the preference) set, or
        unchanged when the tokens give none or decide another option than the parser read.

    >>> from services.core.judgments import parse_step_judgment
    >>> tokens = [("Ok.\\nVerdict:", []), (" False", [(" False", -0.1), (" True", -2.4)])]
    >>> round(with_probabilities(parse_step_judgment("Ok.\\nVerdict: False"), tokens).p_correct, 3)
    0.091
    """
    if not tokens:
        return judgment
    if isinstance(judgment, StepJudgment):
        label, options = ANSWER_LINES["step"]
        read = option_probabilities(tokens, label, options)
        if read is None or judgment.verdict is None or (read.option == "True") != judgment.verdict:
            return judgment
        return replace(judgment, p_correct=read.probabilities["True"])
    label, options = ANSWER_LINES["preference"]
    read = option_probabilities(tokens, label, options)
    if read is None or PREFERENCE_OPTIONS[read.option] != judgment.preference:
        return judgment
    return replace(judgment, probabilities={PREFERENCE_OPTIONS[k]: p for k, p in read.probabilities.items()})
