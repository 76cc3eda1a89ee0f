"""Read a judge's natural-language judgments: a verdict per step, a preference for the reply.

Generative judges phrase verdicts in many ways ("Verdict: True", "**Verdict**: incorrect", "The step
is not correct."). The parsers accept the common ones, prefer an explicit ``Verdict:`` or
``Preference:`` line, and return ``None`` with the reason when they cannot decide. They never raise.

>>> parse_step_judgment("Anxiety fits the seeker's words.\\nVerdict: True").verdict
True
>>> parse_step_judgment("The stage is not correct here.").verdict
False
>>> parse_preference("Both are warm.\\nPreference: C").preference
'equal'
>>> parse_preference("I cannot tell.").preference is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from services.core.types import Preference, TurnKind

#: The four options the judge is offered, in the order shown, with their letters.
PREFERENCE_OPTIONS: dict[str, Preference] = {
    "A": "first",
    "B": "second",
    "C": "equal",
    "D": "neither",
}
PREFERENCE_TEXT: dict[Preference, str] = {
    "first": "the first is better",
    "second": "the second is better",
    "equal": "both are almost equally good",
    "neither": "neither is acceptable",
}

_TRUE_WORDS = ("true", "correct", "yes", "right", "accurate", "valid", "appropriate", "reasonable")
_FALSE_WORDS = ("false", "incorrect", "no", "wrong", "inaccurate", "invalid", "inappropriate")
_WORD = r"(?:{})"
_VERDICT_LINE = re.compile(
    # Possessive quantifiers: a long run of spaces after "verdict" must not backtrack for minutes. The word
    # read is never "verdict" itself: in "VERDICT\nVerdict: True" the second label must stay free to match.
    r"verdict\s*+(?:\*\*|__)?\s*+[:\uff1a=\-]?\s*+(?:\*\*|__)?\s*+\(?\s*+(?!verdict)([a-z]+)",
    re.IGNORECASE,
)
_NEGATED = re.compile(
    # "n't" has no word boundary before it ("wasn't", "doesn't"), so it is matched anywhere.
    r"(?:\bnot|\bcannot|n't)\s+(?:\w+\s+)?" + _WORD.format("|".join(_TRUE_WORDS)) + r"\b",
    re.IGNORECASE,
)
_BARE_TRUE = re.compile(r"\b" + _WORD.format("|".join(_TRUE_WORDS)) + r"\b", re.IGNORECASE)
_BARE_FALSE = re.compile(r"\b" + _WORD.format("|".join(_FALSE_WORDS)) + r"\b", re.IGNORECASE)
_PREF_LINE = re.compile(
    r"(?:preference|answer|option|choice|verdict)\s*+(?:\*\*|__)?\s*+[:\uff1a=]\s*+(?:\*\*|__)?\s*+"
    # An upper-case letter, or a lower-case one standing alone ("answer: a tough call" is not option A).
    r"\(?\s*+(?:option\s+)?((?-i:[A-D])\b|[a-d](?=\)|[.!]?[ \t]*(?:\n|$)))\)?",
    re.IGNORECASE,
)
_PREF_PHRASES: tuple[tuple[re.Pattern[str], Preference], ...] = (
    (re.compile(r"\bneither\b[^.\n]{0,40}\b(?:acceptable|good|adequate|appropriate)", re.I), "neither"),
    (re.compile(r"\bboth\b[^.\n]{0,20}\b(?:unacceptable|inadequate|poor|bad)\b", re.I), "neither"),
    (re.compile(r"\b(?:almost\s+|roughly\s+|about\s+)?equally\s+(?:good|helpful|fine)", re.I), "equal"),
    (re.compile(r"\bboth\b[^.\n]{0,20}\b(?:equally|similar|comparable)\b", re.I), "equal"),
    (re.compile(r"\bfirst\b[^.\n]{0,30}\bis\s+better\b", re.I), "first"),
    (re.compile(r"\bsecond\b[^.\n]{0,30}\bis\s+better\b", re.I), "second"),
    (re.compile(r"\breference\b[^.\n]{0,30}\bis\s+better\b", re.I), "first"),
    (re.compile(r"\bcandidate\b[^.\n]{0,30}\bis\s+better\b", re.I), "second"),
)

ParseStatus = Literal["ok", "empty", "no_verdict", "ambiguous"]


@dataclass(frozen=True)
class StepJudgment:
    """A judge's answer about one step: the verdict, how it was read, and its text.

    Backends that compute their verdicts (the CPU classifier) build it directly, with the probability
    they have; the text of a generative judge is read into it by :func:`parse_step_judgment`.

    Attributes:
        text: what the judge wrote (the rationale and the verdict line).
        verdict: True (correct), False, or None when none could be read.
        status: ``ok``, or why no verdict was read.
        p_correct: the judge's probability that the step is correct, when it has one.
    """

    text: str
    verdict: bool | None
    status: ParseStatus
    p_correct: float | None = None

    @property
    def rationale(self) -> str:
        """The judgment without its verdict line."""
        return _strip_label(self.text, _VERDICT_LINE)


@dataclass(frozen=True)
class PreferenceJudgment:
    """A judge's comparison of the reference (first) with the candidate's reply (second).

    Attributes:
        text: what the judge wrote (the rationale and the preference line).
        preference: the option, or None when none could be read.
        status: ``ok``, or why no option was read.
        probabilities: the judge's probability of each option, when it has them.
    """

    text: str
    preference: Preference | None
    status: ParseStatus
    probabilities: dict[Preference, float] | None = None

    @property
    def rationale(self) -> str:
        """The judgment without its preference line."""
        return _strip_label(self.text, _PREF_LINE)


#: A judge's answer to one turn, read or built: a step's verdict or the reply preference.
Judgment = StepJudgment | PreferenceJudgment


def _strip_label(text: str, label: re.Pattern[str]) -> str:
    lines = [line for line in text.strip().splitlines() if not label.search(line)]
    return "\n".join(lines).strip()


def _word_verdict(word: str) -> bool | None:
    word = word.lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS or word == "not":
        return False
    return None


def parse_step_judgment(text: str) -> StepJudgment:
    """Read the verdict of a judgment about one reasoning step.

    Args:
        text: what the judge wrote.

    Returns:
        The judgment; ``verdict`` is None and ``status`` says why when no verdict can be read:
        ``empty`` (nothing written), ``no_verdict`` (no verdict word), ``ambiguous`` (both).
    """
    if not isinstance(text, str) or not text.strip():
        return StepJudgment(text="" if not isinstance(text, str) else text, verdict=None, status="empty")
    labelled = [_word_verdict(m.group(1)) for m in _VERDICT_LINE.finditer(text)]
    labelled = [v for v in labelled if v is not None]
    if labelled:
        return StepJudgment(text=text, verdict=labelled[-1], status="ok")
    last_line = text.strip().splitlines()[-1]
    for scope in (last_line, text):
        if _NEGATED.search(scope):
            return StepJudgment(text=text, verdict=False, status="ok")
        has_false = bool(_BARE_FALSE.search(scope))
        has_true = bool(_BARE_TRUE.search(scope))
        if has_true != has_false:
            return StepJudgment(text=text, verdict=has_true, status="ok")
        if has_true and has_false and scope is text:
            return StepJudgment(text=text, verdict=None, status="ambiguous")
    return StepJudgment(text=text, verdict=None, status="no_verdict")


def parse_preference(text: str) -> PreferenceJudgment:
    """Read which of the two replies the judge prefers (the reference is the first).

    Args:
        text: what the judge wrote.

    Returns:
        The judgment; ``preference`` is None when no option, or more than one, can be read.
    """
    if not isinstance(text, str) or not text.strip():
        return PreferenceJudgment(text="" if not isinstance(text, str) else text, preference=None, status="empty")
    letters = [m.group(1).upper() for m in _PREF_LINE.finditer(text)]
    if letters:
        return PreferenceJudgment(text=text, preference=PREFERENCE_OPTIONS[letters[-1]], status="ok")
    found: list[Preference] = []
    for pattern, option in _PREF_PHRASES:
        if pattern.search(text) and option not in found:
            found.append(option)
    if len(found) == 1:
        return PreferenceJudgment(text=text, preference=found[0], status="ok")
    return PreferenceJudgment(text=text, preference=None, status="ambiguous" if found else "no_verdict")


def read_answer(kind: TurnKind, text: str) -> Judgment:
    """Read what a generative judge wrote for a turn of this kind.

    >>> read_answer("preference", "Warmer.\\nPreference: B").preference
    'second'
    """
    return parse_step_judgment(text) if kind == "step" else parse_preference(text)
