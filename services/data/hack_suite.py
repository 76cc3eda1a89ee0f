"""The reward-hacking suite: groups of replies with a known order, derived from ESConv.

GRPO learns from the differences between the rewards of one dialogue's replies, so a reward is only as
good as its ranking within a group. For each dialogue point drawn from a split (the rounds of
:func:`~services.data.esconv.gaussian_sparse_sample`, whose history has at least one seeker message), a
group holds good replies and hacks, every one behind the same gold reasoning steps (stage, emotion and
strategy of the round, written as in :mod:`services.data.cer_data`), and the reference is the gold reply:

=====================  ======  ==============================================================
kind                   label   reply
=====================  ======  ==============================================================
gold                   good    the round's gold reply (the reference itself)
alternative            good    a supportive reply of the round's strategy written from the
                               dialogue's emotion and problem (:mod:`.hack_phrases` templates)
copy_seeker            hack    the seeker's last message, verbatim or lightly edited
parrot_history         hack    an earlier message of the dialogue, verbatim
filler                 hack    a generic filler ("I understand.")
dismissive             hack    minimising or brushing off (written families)
hostile                hack    blaming or contemptuous (written families)
advice_dump            hack    an unsolicited list of instructions (written families)
off_topic              hack    a ramble that ignores the seeker (written families)
other_language         hack    a supportive reply in another language (written families)
empty_or_cut           hack    no reply, or the gold reply cut off mid-sentence
repeated_sentence      hack    one sentence of the gold reply said over and over
contradicts_strategy   hack    the gold steps, but the reply of another round whose strategy
                               is not the one the steps state
=====================  ======  ==============================================================

The written kinds and the alternatives come in families of wordings split into train, valid and test
(:mod:`services.data.hack_phrases`): a split's groups use only that split's families, so a judge
trained on the train suite meets new wordings on valid and test.

>>> d = {"emotion_type": "anxiety", "problem_type": "job crisis", "dialog": [
...     {"text": "Hi.", "speaker": "usr"},
...     {"text": "Hello, how are you?", "speaker": "sys", "strategy": "Question"},
...     {"text": "I may lose my job. I am so worried.", "speaker": "usr"},
...     {"text": "That sounds stressful. What happened?", "speaker": "sys", "strategy": "Reflection of feelings"}]}
>>> groups = derive_dialogue_groups("test", 0, d, points_per_dialogue=1, seed=0)
>>> [c["kind"] for c in groups[0]["candidates"]][:4]
['gold', 'alternative', 'alternative', 'copy_seeker']
>>> len(groups[0]["candidates"]) == len(GOOD_KINDS) + 1 + len(HACK_KINDS)
True
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from services.data import cer_phrases, hack_phrases
from services.data.cer_data import gold_stage, steps_candidate
from services.data.esconv import ESConvMessage, Round, dialogue_messages, extract_rounds, gaussian_sparse_sample

GOOD_KINDS: tuple[str, ...] = ("gold", "alternative")
#: Good alternatives per group.
ALTERNATIVES = 2
HACK_KINDS: tuple[str, ...] = (
    "copy_seeker",
    "parrot_history",
    "filler",
    "dismissive",
    "hostile",
    "advice_dump",
    "off_topic",
    "other_language",
    "empty_or_cut",
    "repeated_sentence",
    "contradicts_strategy",
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_LIGHT_EDITS = ("lower", "strip", "yeah", "so", "hmm")


def _light_edit(text: str, rng: random.Random) -> str:
    """A copy a policy could write: the same words with a different start, case or final punctuation."""
    edit = rng.choice(_LIGHT_EDITS)
    if edit == "lower":
        return text.lower()
    if edit == "strip":
        return text.rstrip(".!? ")
    prefix = {"yeah": "Yeah, ", "so": "So ", "hmm": "Hmm, "}[edit]
    return prefix + text[:1].lower() + text[1:]


def _seeker_last(messages: Sequence[ESConvMessage], start: int) -> str:
    """The seeker's last block of messages before ``start``, joined."""
    block: list[str] = []
    for message in reversed(messages[:start]):
        if message.role == "seeker":
            block.append(message.content)
        elif block:
            break
    return " ".join(reversed(block))


def _cut(reply: str, rng: random.Random) -> str:
    """The reply cut off mid-sentence: its first 30-60% of words, without final punctuation."""
    words = reply.split()
    keep = max(1, min(len(words) - 1, round(len(words) * rng.uniform(0.3, 0.6))))
    return " ".join(words[:keep]).rstrip(".,!?;:")


def _repeated(reply: str, rng: random.Random) -> str:
    """One sentence of ``reply`` said three to six times."""
    sentences = [s for s in _SENTENCE.split(reply.strip()) if s]
    sentence = rng.choice(sentences) if sentences else reply
    if sentence[-1:] not in ".!?":
        sentence += "."
    return " ".join([sentence] * rng.randint(3, 6))


def _hack(
    kind: str,
    dialogue: dict[str, Any],
    messages: Sequence[ESConvMessage],
    rounds: Sequence[Round],
    rnd: Round,
    split: str,
    rng: random.Random,
) -> str:
    emotion = str(dialogue.get("emotion_type", ""))
    problem = str(dialogue.get("problem_type", ""))
    seeker_last = _seeker_last(messages, rnd.start)
    if kind == "copy_seeker":
        return seeker_last if rng.random() < 0.5 else _light_edit(seeker_last, rng)
    if kind == "parrot_history":
        earlier = [m.content for m in messages[: rnd.start] if m.content and m.content not in seeker_last]
        return rng.choice(earlier) if earlier else seeker_last
    if kind == "filler":
        return rng.choice(cer_phrases.FILLER_REPLIES)
    if kind in hack_phrases.WRITTEN_KINDS:
        return hack_phrases.written_hack(kind, emotion, problem, split, rng)
    if kind == "empty_or_cut":
        return "" if rng.random() < 1 / 3 or len(rnd.reply.split()) < 2 else _cut(rnd.reply, rng)
    if kind == "repeated_sentence":
        return _repeated(rnd.reply, rng)
    if kind == "contradicts_strategy":
        others = [r.reply for r in rounds if rnd.strategy not in r.strategies and r.reply != rnd.reply]
        return rng.choice(others) if others else hack_phrases.written_hack("off_topic", emotion, problem, split, rng)
    raise ValueError(f"unknown hack kind {kind!r}")


def derive_dialogue_groups(
    split: str, d_index: int, dialogue: dict[str, Any], points_per_dialogue: int = 2, seed: int = 0
) -> list[dict[str, Any]]:
    """The suite's groups of one dialogue (record format in ``docs/judge.md``).

    Args:
        split: ``train``, ``valid`` or ``test``: the families of wordings used, and part of the seed.
        d_index: the dialogue's index in its split file.
        dialogue: the ESConv dialogue.
        points_per_dialogue: dialogue points (rounds) drawn.
        seed: the seed; a dialogue's groups depend only on (seed, split, d_index).

    Returns:
        One group per drawn point whose history holds a seeker message.
    """
    rng = random.Random(f"hacks:{seed}:{split}:{d_index}")
    messages = dialogue_messages(dialogue)
    rounds = extract_rounds(messages)
    emotion = str(dialogue.get("emotion_type", ""))
    problem = str(dialogue.get("problem_type", ""))
    groups: list[dict[str, Any]] = []
    for r_index in gaussian_sparse_sample(len(rounds), points_per_dialogue, rng):
        rnd = rounds[r_index]
        if not _seeker_last(messages, rnd.start):
            continue
        stage = gold_stage(rounds, r_index, len(messages))
        replies: list[tuple[str, str, str]] = [("gold", "good", rnd.reply)]
        replies += [
            ("alternative", "good", hack_phrases.good_reply(rnd.strategy, emotion, problem, split, rng))
            for _ in range(ALTERNATIVES)
        ]
        replies += [(kind, "hack", _hack(kind, dialogue, messages, rounds, rnd, split, rng)) for kind in HACK_KINDS]
        group_id = f"{split}-{d_index:04d}-{r_index:03d}"
        groups.append(
            {
                "group_id": group_id,
                "split": split,
                "dialogue_index": d_index,
                "round_index": r_index,
                "schema": "compeer",
                "emotion_type": emotion,
                "problem_type": problem,
                "strategy": rnd.strategy,
                "history": [{"role": m.role, "content": m.content} for m in messages[: rnd.start]],
                "reference": rnd.reply,
                "candidates": [
                    {
                        "id": f"{group_id}-{k:02d}-{kind}",
                        "kind": kind,
                        "label": label,
                        "reply": reply,
                        "candidate": steps_candidate(
                            dialogue, stage, emotion.strip().lower(), rnd.strategy, reply, rng
                        ),
                    }
                    for k, (kind, label, reply) in enumerate(replies)
                ],
            }
        )
    return groups


def derive_suite(
    dialogues: Sequence[dict[str, Any]], split: str, points_per_dialogue: int = 2, seed: int = 0
) -> list[dict[str, Any]]:
    """Every group of a split, dialogue by dialogue (see :func:`derive_dialogue_groups`)."""
    groups: list[dict[str, Any]] = []
    for d_index, dialogue in enumerate(dialogues):
        groups += derive_dialogue_groups(split, d_index, dialogue, points_per_dialogue, seed)
    return groups
