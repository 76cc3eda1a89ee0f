"""The names every part of the system shares, each defined once.

The reward service, the embedder, the trainer, the data pipelines and the wire contracts all speak of
reasoning schemas, judge modes, preference options, item statuses, redundancy variants, length units
and dialogue messages; they import them from here.

>>> DialogueMessage("seeker", "I lost my job.")
DialogueMessage(role='seeker', content='I lost my job.')
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

#: Longest text any contract accepts (each service's settings set the working limit, lower).
MAX_TEXT = 200_000

SchemaName = Literal["compeer", "care"]
"""Reasoning schema a policy writes: COMPEER's three stages or CARE's four nodes."""
JudgeMode = Literal["unified", "prm", "orm"]
"""What the judge checks: unified (steps, then the reply in their light), prm (steps), orm (reply)."""
Preference = Literal["first", "second", "equal", "neither"]
"""The judge's comparison of the reference (first) with the candidate's reply (second)."""
ItemStatus = Literal["ok", "parse_error", "backend_error"]
"""How judging one candidate went."""
Variant = Literal["paper", "sign_aware"]
"""How the redundancy weight applies: paper (r * weight, eq. 5 as printed) or sign_aware."""
LengthUnit = Literal["words", "tokens"]
"""What a reply's length is counted in for the redundancy gate tau."""
Role = Literal["seeker", "supporter"]
"""Who wrote a dialogue message."""
Scoring = Literal["discrete", "expected"]
"""How verdicts become a reward: COMPEER's +1/-1 (discrete), or each replaced by its expectation (expected)."""
TurnKind = Literal["step", "preference"]
"""What a judge turn asks: a step's verdict or the reply preference."""


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class DialogueMessage:
    """One message of a dialogue: the wire contracts, the judge's prompts and the data pipelines share it."""

    role: Role
    content: Annotated[str, Field(max_length=MAX_TEXT)]
