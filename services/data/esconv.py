"""ESConv dialogues as messages and *rounds*, and COMPEER's Gaussian sparse sampling of rounds.

A *round* is a maximal block of consecutive supporter messages that follows at least one seeker
message: the supporter's reply to what the seeker just said. Supporter messages before the seeker's
first message (greetings) belong to the history but are not rounds. A round's gold reply is its
messages joined with a space; its strategy is the first message's strategy.

Pure python (no torch), shared by the judge's data builder and the trainer's prompt builder.

>>> d = {"dialog": [
...     {"text": "Hi, how are you?", "speaker": "sys", "strategy": "Question"},
...     {"text": "Not great.", "speaker": "usr"},
...     {"text": "I'm sorry.", "speaker": "sys", "strategy": "Affirmation and Reassurance"},
...     {"text": "What happened?", "speaker": "sys", "strategy": "Question"},
...     {"text": "I lost my job.", "speaker": "usr"}]}
>>> [(r.start, r.end, r.reply, r.strategy) for r in extract_rounds(dialogue_messages(d))]
[(2, 4, "I'm sorry. What happened?", 'Affirmation and Reassurance')]
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic.dataclasses import dataclass as pydantic_dataclass

from services.core.types import DialogueMessage, Role

_ROLES: dict[str, Role] = {"usr": "seeker", "sys": "supporter", "seeker": "seeker", "supporter": "supporter"}
SPLITS: tuple[str, ...] = ("train", "valid", "test")


@pydantic_dataclass(frozen=True)
class ESConvMessage(DialogueMessage):
    """A dialogue message as ESConv annotates it: ``strategy`` is set on supporter messages only."""

    strategy: str | None = None


@dataclass(frozen=True)
class Round:
    """A block of supporter messages answering the seeker.

    Attributes:
        index: the round's position among the dialogue's rounds (0-based).
        start: index of the block's first message in the dialogue.
        end: index one past the block's last message.
        reply: the block's messages joined with a space (the gold reply).
        strategy: the strategy of the block's first message.
        strategies: the strategy of every message of the block.
    """

    index: int
    start: int
    end: int
    reply: str
    strategy: str
    strategies: tuple[str, ...]


def load_split(path: str | Path) -> list[dict[str, Any]]:
    """Read an ESConv split file (JSON Lines, one dialogue a line).

    Args:
        path: e.g. ``../shared/data/esconv/esconv_train.jsonl``.

    Returns:
        The dialogues, in file order.
    """
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def split_path(data_dir: str | Path, split: str) -> Path:
    """The file of ``split`` (``train``, ``valid`` or ``test``) in an ESConv data directory."""
    return Path(data_dir) / f"esconv_{split}.jsonl"


def dialogue_messages(dialogue: dict[str, Any]) -> list[ESConvMessage]:
    """The dialogue's turns as messages with roles ``seeker``/``supporter``.

    Args:
        dialogue: one ESConv dialogue (``dialog`` turns with ``text``, ``speaker`` usr/sys, ``strategy``).

    Returns:
        One message per turn, in order; empty texts are kept (ESConv has none).
    """
    return [
        ESConvMessage(
            role=_ROLES[turn["speaker"]],
            content=str(turn.get("text", "")).strip(),
            strategy=turn.get("strategy") if _ROLES[turn["speaker"]] == "supporter" else None,
        )
        for turn in dialogue["dialog"]
    ]


def extract_rounds(messages: Sequence[ESConvMessage]) -> list[Round]:
    """Cut the dialogue into rounds (see the module docstring).

    Args:
        messages: the dialogue's messages.

    Returns:
        The rounds in dialogue order.

    >>> m = [ESConvMessage("supporter", "Hi", "Others"), ESConvMessage("seeker", "Help"),
    ...      ESConvMessage("supporter", "Sure", "Others"), ESConvMessage("seeker", "Thanks")]
    >>> [(r.index, r.start, r.end) for r in extract_rounds(m)]
    [(0, 2, 3)]
    """
    rounds: list[Round] = []
    seen_seeker = False
    i = 0
    while i < len(messages):
        if messages[i].role == "seeker":
            seen_seeker = True
            i += 1
            continue
        j = i
        while j < len(messages) and messages[j].role == "supporter":
            j += 1
        if seen_seeker:
            block = messages[i:j]
            strategies = tuple(m.strategy or "Others" for m in block)
            rounds.append(
                Round(
                    index=len(rounds),
                    start=i,
                    end=j,
                    reply=" ".join(m.content for m in block),
                    strategy=strategies[0],
                    strategies=strategies,
                )
            )
        i = j
    return rounds


def gaussian_sparse_sample(n_rounds: int, n_samples: int, rng: random.Random) -> list[int]:
    """Draw round indices around the middle of the dialogue (COMPEER eq. 1).

    Indices are drawn from N(mu = Nr/2, sigma = Nr/4), rounded and clipped to ``[0, Nr-1]``;
    duplicates are redrawn. ``n_samples`` is capped at ``n_rounds`` (then every round is returned).

    Args:
        n_rounds: Nr, the number of rounds of the dialogue.
        n_samples: Ns, how many rounds to draw.
        rng: the random generator (seed it for reproducible data).

    Returns:
        ``min(Ns, Nr)`` unique indices, sorted (dialogue order).

    >>> gaussian_sparse_sample(10, 3, random.Random(0))
    [2, 3, 7]
    >>> gaussian_sparse_sample(3, 5, random.Random(0))
    [0, 1, 2]
    >>> gaussian_sparse_sample(0, 4, random.Random(0))
    []
    """
    if n_rounds <= 0 or n_samples <= 0:
        return []
    if n_samples >= n_rounds:
        return list(range(n_rounds))
    mu, sigma = n_rounds / 2, n_rounds / 4
    chosen: set[int] = set()
    draws = 0
    while len(chosen) < n_samples and draws < 1000 * n_samples:
        draws += 1
        chosen.add(min(n_rounds - 1, max(0, round(rng.gauss(mu, sigma)))))
    if len(chosen) < n_samples:  # pathological Ns close to Nr: fill with the rounds nearest the middle
        rest = sorted(set(range(n_rounds)) - chosen, key=lambda k: (abs(k - mu), k))
        chosen.update(rest[: n_samples - len(chosen)])
    return sorted(chosen)


def iter_rounds(dialogues: Sequence[dict[str, Any]]) -> Iterator[tuple[int, list[ESConvMessage], Round]]:
    """Every round of every dialogue as ``(dialogue index, messages, round)``."""
    for d_index, dialogue in enumerate(dialogues):
        messages = dialogue_messages(dialogue)
        for rnd in extract_rounds(messages):
            yield d_index, messages, rnd
