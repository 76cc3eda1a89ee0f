"""Labelled judge items (CER: controllable empathetic reasoning) derived from ESConv.

For each round drawn by :func:`services.data.esconv.gaussian_sparse_sample`, the history is the dialogue
before the round and the reference is the round's gold reply. The gold reasoning steps (COMPEER schema)
are written in varied words (:mod:`services.data.cer_phrases`) from the dialogue's annotations:

- ``history_analysis``: the problem type, and ``Stage:`` the gold stage (:func:`gold_stage`);
- ``emotional_state``: ``Sentiment: negative``, ``Emotion:`` the dialogue's ``emotion_type``,
  ``Intensity:`` the seeker's ``initial_emotion_intensity`` (3 when missing);
- ``support_strategy``: ``Strategy:`` the round's strategy and a reason.

Each round yields candidates with known labels (``corruption``: per-step verdicts, preference):

==========================  ==============================================  ========  ===========
corruption                  candidate (reference = gold reply unless said)  steps     preference
==========================  ==============================================  ========  ===========
gold                        gold steps, gold reply                          T T T     equal
stage                       another stage                                   F T T     equal
emotion                     another of the 8 main emotions                  T F T     equal
strategy                    another strategy (reply kept)                   T T F     equal
                            (wrong values drawn as often as they are right: ReplyPool.draw_wrong)
other_dialogue              reply of another dialogue, same strategy        T T T     first
contradicting_strategy      reply of another round of this dialogue whose   T T T     first
                            strategy differs from the stated one
filler                      a generic reply ("I understand.")               T T T     first
bad_reference               gold reply; reference from another dialogue     T T T     second
                            (balanced: one per ``first`` item, of its kind)
both_bad                    reply = reference = from another dialogue       T T T     neither
==========================  ==============================================  ========  ===========

The table is the ``balance=False`` layout. Replies taken from other dialogues come from the same
split and have the gold strategy when one exists, so the stated strategy stays the reply's strategy.

With ``balance=True`` (the default) two shortcuts are removed (see ``docs/data.md``):

- a round has one ``bad_reference`` item per ``first`` item, its reference of the same kind as that
  item's reply (another dialogue's, another round's, a filler), so neither string comparison nor the
  kind of text tells ``first`` from ``second``;
- the three step-corrupted items are not always paired with the gold reply: each draws its
  (reply, reference) pairing with the weights the gold-steps items have (gold/gold 1, worse
  reply/gold 3, gold/bad reference 3, bad/bad 1), so step labels say nothing about the replies and
  ``equal`` and ``neither`` are balanced among items whose reply equals the reference.

Each record says where its reply and reference come from (``reply_source``: gold, other_dialogue,
same_dialogue, filler; ``reference_source`` the same); the preference follows from them.

>>> d = {"emotion_type": "anxiety", "problem_type": "job crisis", "survey_score": {}, "dialog": [
...     {"text": "I may lose my job.", "speaker": "usr"},
...     {"text": "What happened?", "speaker": "sys", "strategy": "Question"}]}
>>> pool = ReplyPool.build([d, d])
>>> items = derive_dialogue_items("test", 0, d, pool, rounds_per_dialogue=4, seed=0)
>>> [i["corruption"] for i in items][:4], items[0]["labels"]["preference"]
(['gold', 'stage', 'emotion', 'strategy'], 'equal')
>>> sorted({(i["reply_source"], i["reference_source"], i["labels"]["preference"]) for i in items})[:2]
[('filler', 'gold', 'first'), ('gold', 'filler', 'second')]
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.core.schemas import EMOTIONS, SCHEMAS, STAGES, STRATEGIES, STRATEGY_STAGE, render_candidate
from services.core.types import DialogueMessage
from services.data import cer_phrases
from services.data.esconv import Round, dialogue_messages, extract_rounds, gaussian_sparse_sample

CORRUPTIONS: tuple[str, ...] = (
    "gold",
    "stage",
    "emotion",
    "strategy",
    "other_dialogue",
    "contradicting_strategy",
    "filler",
    "bad_reference",
    "both_bad",
)
#: The emotions a wrong ``Emotion:`` is drawn from (ESConv's eight frequent ones).
MAIN_EMOTIONS: tuple[str, ...] = EMOTIONS[:8]
_STEP_NAMES = tuple(spec.name for spec in SCHEMAS["compeer"].steps)
_STEP_FALSE = {"stage": "history_analysis", "emotion": "emotional_state", "strategy": "support_strategy"}


def gold_stage(rounds: Sequence[Round], index: int, n_messages: int) -> str:
    """The support stage a reply at round ``index`` belongs to.

    The strategies of every message of this round and of the two rounds before it vote through
    ``STRATEGY_STAGE`` (``Others`` has no vote); the majority wins and a tie goes to the later stage
    (ESConv's stages run exploration -> comforting -> action). Without any vote the round's position
    decides: first third of the dialogue's messages exploration, second comforting, last action.

    Args:
        rounds: the dialogue's rounds.
        index: the round judged.
        n_messages: the dialogue's number of messages.

    Returns:
        One of ``STAGES``.

    >>> r = [Round(i, 2 * i + 1, 2 * i + 2, "x", s, (s,)) for i, s in enumerate(
    ...     ["Question", "Self-disclosure", "Providing Suggestions", "Others"])]
    >>> gold_stage(r, 1, 8), gold_stage(r, 2, 8), gold_stage(r, 3, 8), gold_stage(r[3:], 0, 8)
    ('comforting', 'action', 'action', 'action')
    """
    votes: Counter[str] = Counter()
    for rnd in rounds[max(0, index - 2) : index + 1]:
        for strategy in rnd.strategies:
            stage = STRATEGY_STAGE.get(strategy)
            if stage is not None:
                votes[stage] += 1
    if votes:
        best = max(votes.values())
        return max((s for s in votes if votes[s] == best), key=STAGES.index)
    third = min(2, 3 * rounds[index].start // max(1, n_messages))
    return STAGES[third]


@dataclass
class ReplyPool:
    """What a split offers for corruptions: gold replies by strategy, to take replies "from another
    dialogue", and how often each stage, emotion and strategy is the gold value, to draw wrong values.

    Wrong values are drawn in proportion to how often they are right (:meth:`draw_wrong`): drawn
    uniformly, a rare value (``nervousness``) would mostly appear in wrong steps, and a judge could
    reject it without reading the dialogue.
    """

    by_strategy: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    everything: list[tuple[int, str]] = field(default_factory=list)
    gold_counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    @classmethod
    def build(cls, dialogues: Sequence[dict[str, Any]]) -> ReplyPool:
        """Index every round's reply of ``dialogues`` by its strategy and count the gold values."""
        pool = cls()
        for d_index, dialogue in enumerate(dialogues):
            messages = dialogue_messages(dialogue)
            rounds = extract_rounds(messages)
            emotion = str(dialogue.get("emotion_type", "")).strip().lower()
            for r_index, rnd in enumerate(rounds):
                pool.by_strategy[rnd.strategy].append((d_index, rnd.reply))
                pool.everything.append((d_index, rnd.reply))
                pool.gold_counts["strategy"][rnd.strategy] += 1
                pool.gold_counts["stage"][gold_stage(rounds, r_index, len(messages))] += 1
                pool.gold_counts["emotion"][emotion] += 1
        return pool

    def draw_wrong(self, rng: random.Random, name: str, gold: str, allowed: Sequence[str]) -> str:
        """A value of field ``name`` other than ``gold``, weighted by how often it is the gold value."""
        others = [v for v in allowed if v != gold]
        return rng.choices(others, weights=[self.gold_counts[name][v] + 1 for v in others])[0]

    def draw(self, rng: random.Random, exclude_dialogue: int, strategy: str, avoid: set[str]) -> str:
        """A reply of another dialogue, with ``strategy`` when possible, not in ``avoid``."""
        for candidates in (self.by_strategy.get(strategy, []), self.everything):
            for _ in range(50):
                if not candidates:
                    break
                d_index, reply = rng.choice(candidates)
                if d_index != exclude_dialogue and reply not in avoid:
                    return reply
        return rng.choice(cer_phrases.FILLER_REPLIES)


def seeker_intensity(dialogue: dict[str, Any]) -> str:
    """The seeker's ``initial_emotion_intensity`` (1-5) as written in a step; 3 when missing."""
    raw = str(((dialogue.get("survey_score") or {}).get("seeker") or {}).get("initial_emotion_intensity", ""))
    return raw.strip() if raw.strip() in ("1", "2", "3", "4", "5") else "3"


def steps_candidate(
    dialogue: dict[str, Any], stage: str, emotion: str, strategy: str, reply: str, rng: random.Random
) -> str:
    """A COMPEER candidate stating ``stage``, ``emotion`` and ``strategy`` in varied words, then ``reply``."""
    steps = {
        "history_analysis": (cer_phrases.history_text(str(dialogue.get("problem_type", "")), rng), {"stage": stage}),
        "emotional_state": (
            cer_phrases.emotion_text(emotion, rng),
            {"sentiment": "negative", "emotion": emotion, "intensity": seeker_intensity(dialogue)},
        ),
        "support_strategy": (cer_phrases.strategy_text(strategy, rng), {"strategy": strategy}),
    }
    return render_candidate(SCHEMAS["compeer"], steps, reply)


_PAIRINGS = ("gold", "first", "second", "neither")
#: The kinds of worse reply: another dialogue's, another round of this dialogue (another strategy), a filler.
_WORSE_KINDS = ("other_dialogue", "contradicting_strategy", "filler")
#: How often each pairing occurs among the gold-steps items of a balanced round (1 + 3 + 3 + 1);
#: step-corrupted items draw theirs with the same weights, so step labels say nothing about the pairing.
_PAIRING_WEIGHTS = (1, 3, 3, 1)
Variant = tuple[str, dict[str, str], str, str, str, str]


def _variants(
    d_index: int, rounds: Sequence[Round], rnd: Round, pool: ReplyPool, rng: random.Random, balance: bool
) -> list[Variant]:
    """(corruption, step values to change, reply, reference, reply source, reference source) of a round."""
    gold = rnd.reply
    used = {gold}

    def other() -> str:
        reply = pool.draw(rng, d_index, rnd.strategy, used)
        used.add(reply)
        return reply

    same = [r.reply for r in rounds if r.strategy != rnd.strategy and r.reply != gold]

    def worse(kind: str) -> tuple[str, str]:
        if kind == "contradicting_strategy" and same:
            return rng.choice(same), "same_dialogue"
        if kind == "filler":
            return rng.choice(cer_phrases.FILLER_REPLIES), "filler"
        return other(), "other_dialogue"

    def pairing(kind: str, worse_kind: str | None = None) -> tuple[str, str, str, str]:
        worse_kind = worse_kind or rng.choice(_WORSE_KINDS)
        if kind == "first":
            return (*worse(worse_kind), gold, "gold")
        if kind == "second":
            return (gold, "gold", *worse(worse_kind))
        if kind == "neither":
            bad = other()
            return bad, "other_dialogue", bad, "other_dialogue"
        return gold, "gold", gold, "gold"

    out: list[Variant] = [("gold", {}, gold, "gold", gold, "gold")]
    wrong_strategy = pool.draw_wrong(rng, "strategy", rnd.strategy, STRATEGIES)
    for corruption, changed in (("stage", {}), ("emotion", {}), ("strategy", {"strategy": wrong_strategy})):
        kind = rng.choices(_PAIRINGS, weights=_PAIRING_WEIGHTS)[0] if balance else "gold"
        reply, reply_source, reference, reference_source = pairing(kind)
        out.append((corruption, changed, reply, reply_source, reference, reference_source))
    firsts = [kind for kind in _WORSE_KINDS if kind != "contradicting_strategy" or same]
    for kind in firsts:
        reply, source = worse(kind)
        out.append((kind, {}, reply, source, gold, "gold"))
    # Each worse reply next to a gold reference is mirrored by a worse reference of the same kind
    # next to the gold reply, so no kind of text tells "first" from "second" without the dialogue.
    for kind in firsts if balance else ["other_dialogue"]:
        out.append(("bad_reference", {}, *pairing("second", kind)))
    out.append(("both_bad", {}, *pairing("neither")))
    return out


def _preference(reply_source: str, reference_source: str, reply: str, reference: str) -> str:
    if reference_source == "gold":
        return "equal" if reply_source == "gold" else "first"
    if reply_source == "gold":
        return "second"
    return "neither" if reply == reference else "first"


def derive_dialogue_items(
    split: str,
    d_index: int,
    dialogue: dict[str, Any],
    pool: ReplyPool,
    rounds_per_dialogue: int = 4,
    seed: int = 0,
    balance: bool = True,
) -> list[dict[str, Any]]:
    """The labelled items of one dialogue (record format in ``docs/data.md``).

    Args:
        split: ``train``, ``valid`` or ``test`` (recorded, and part of the random seed).
        d_index: the dialogue's index in its split file.
        dialogue: the ESConv dialogue.
        pool: replies of the same split, for replies "from another dialogue".
        rounds_per_dialogue: Ns, rounds drawn per dialogue.
        seed: the seed; a dialogue's items depend only on (seed, split, d_index).
        balance: balance the preference within "reply equals reference" and "reply differs from
            reference", and pair step-corrupted steps with replies as the gold steps are (module doc).

    Returns:
        The items, round by round.
    """
    rng = random.Random(f"cer:{seed}:{split}:{d_index}")
    messages = dialogue_messages(dialogue)
    rounds = extract_rounds(messages)
    emotion = str(dialogue.get("emotion_type", "")).strip().lower()
    items: list[dict[str, Any]] = []
    for r_index in gaussian_sparse_sample(len(rounds), rounds_per_dialogue, rng):
        rnd = rounds[r_index]
        stage = gold_stage(rounds, r_index, len(messages))
        history = [{"role": m.role, "content": m.content} for m in messages[: rnd.start]]
        variants = _variants(d_index, rounds, rnd, pool, rng, balance)
        for k, (corruption, changed, reply, reply_source, reference, reference_source) in enumerate(variants):
            values = {"stage": stage, "emotion": emotion, "strategy": rnd.strategy, **changed}
            if corruption == "stage":
                values["stage"] = pool.draw_wrong(rng, "stage", stage, STAGES)
            if corruption == "emotion":
                values["emotion"] = pool.draw_wrong(rng, "emotion", emotion, MAIN_EMOTIONS)
            wrong = _STEP_FALSE.get(corruption)
            items.append(
                {
                    "id": f"{split}-{d_index:04d}-{r_index:03d}-{k:02d}-{corruption}",
                    "split": split,
                    "dialogue_index": d_index,
                    "round_index": r_index,
                    "schema": "compeer",
                    "history": history,
                    "candidate": steps_candidate(
                        dialogue, values["stage"], values["emotion"], values["strategy"], reply, rng
                    ),
                    "reference": reference,
                    "labels": {
                        "steps": {name: name != wrong for name in _STEP_NAMES},
                        "preference": _preference(reply_source, reference_source, reply, reference),
                    },
                    "corruption": corruption,
                    "reply_source": reply_source,
                    "reference_source": reference_source,
                }
            )
    return items


def derive_split(
    dialogues: Sequence[dict[str, Any]], split: str, rounds_per_dialogue: int = 4, seed: int = 0, balance: bool = True
) -> list[dict[str, Any]]:
    """Every item of a split, dialogue by dialogue (see :func:`derive_dialogue_items`)."""
    pool = ReplyPool.build(dialogues)
    items: list[dict[str, Any]] = []
    for d_index, dialogue in enumerate(dialogues):
        items += derive_dialogue_items(split, d_index, dialogue, pool, rounds_per_dialogue, seed, balance)
    return items


def history_messages(record: dict[str, Any]) -> list[DialogueMessage]:
    """A record's history as :class:`~services.core.types.DialogueMessage` objects."""
    return [DialogueMessage(role=m["role"], content=m["content"]) for m in record["history"]]


def write_jsonl(records: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write records one JSON object a line; returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Read up to ``limit`` records of a JSON Lines file."""
    records: list[dict[str, Any]] = []
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if limit is not None and len(records) >= limit:
                break
            if line.strip():
                records.append(json.loads(line))
    return records


def label_counts(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Items per corruption, per preference and False steps per step name (for ``docs/data.md``)."""
    corruption: Counter[str] = Counter()
    preference: Counter[str] = Counter()
    false_steps: Counter[str] = Counter()
    total = 0
    for record in records:
        total += 1
        corruption[record["corruption"]] += 1
        preference[record["labels"]["preference"]] += 1
        for name, ok in record["labels"]["steps"].items():
            false_steps[name] += 0 if ok else 1
    return {
        "items": total,
        "corruption": dict(corruption),
        "preference": dict(preference),
        "false_steps": dict(false_steps),
    }
