"""Feature vectors of the CPU judge, built from sentence embeddings (numpy only).

Every text (a message, a reply) is embedded once with the frozen encoder (unit vectors); the features
below only combine those vectors, so training (from ESConv rounds) and serving (from a
:class:`~services.core.judge_prompts.JudgeTask`) compute exactly the same numbers.

>>> import numpy as np
>>> emb = {"I lost my job.": np.array([1.0, 0.0]), "Oh no.": np.array([0.0, 1.0])}
>>> ctx = context_vectors([("seeker", "I lost my job.")], emb.__getitem__, dim=2)
>>> ctx.seeker_last.tolist(), ctx.n_seeker
([1.0, 0.0], 1)
>>> fit_features(ctx, emb["Oh no."], "Oh no.").shape
(44,)
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

Lookup = Callable[[str], np.ndarray]
N_POSITION = 4
#: Hashed bag-of-words size: cue words ("?", "try", "anxious", "I ...") that sentence embeddings blur.
BOW_BUCKETS = 1024
_TOKEN = re.compile(r"[a-z']+|[?!]")
#: Word stems that name an emotion, one group per main ESConv emotion (in ``EMOTIONS`` order). Seekers
#: often say how they feel ("I'm so anxious"); a sentence embedding of a long history blurs it.
EMOTION_CUES: tuple[tuple[str, ...], ...] = (
    ("anxi", "worr", "stress", "panic", "overwhelm", "uneasy", "on edge"),
    ("depress", "hopeless", "empty", "numb", "unmotivat", "worthless", "no energy", "give up"),
    ("sad", "cry", "crying", "lonely", "alone", "grief", "griev", "miss ", "heartbroken", "upset"),
    ("angry", "anger", "mad ", "furious", "frustrat", "annoy", "pissed", "hate", "resent"),
    ("afraid", "scared", "fear", "terrif", "frighten"),
    ("ashamed", "shame", "embarrass", "humiliat", "guilty", "my fault"),
    ("disgust", "gross", "sick of", "repuls", "revolting"),
    ("nervous", "jitter", "butterflies", "tense"),
)


def bag_of_words(texts: Sequence[str], buckets: int = BOW_BUCKETS) -> np.ndarray:
    """Hashed unigrams and bigrams of ``texts`` (log counts, unit length; zeros for no words).

    >>> v = bag_of_words(["Have you tried?"])
    >>> v.shape, round(float(np.linalg.norm(v)), 3)
    ((1024,), 1.0)
    """
    vector = np.zeros(buckets, dtype=np.float32)
    for text in texts:
        tokens = _TOKEN.findall(text.lower())
        for gram in tokens + [f"{a} {b}" for a, b in pairwise(tokens)]:
            vector[zlib.crc32(gram.encode()) % buckets] += 1.0
    vector = np.log1p(vector)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


#: Phrases typical of each ESConv strategy (in ``STRATEGIES`` order), for the strategy and stage heads.
STRATEGY_CUES: tuple[tuple[str, ...], ...] = (
    ("?", "what ", "how ", "why ", "do you", "have you", "are you", "can you tell"),
    ("so you", "you're saying", "you are saying", "in other words", "if i understand", "you mean", "so your"),
    ("sounds like", "you feel", "you must feel", "you seem", "must be", "feeling", "frustrating", "difficult"),
    ("i have", "i had", "i was", "i've", "when i", "my ", "i went through", "i remember", "i used to"),
    (
        "great",
        "good for you",
        "proud",
        "you can",
        "you will",
        "you're doing",
        "brave",
        "strong",
        "it's ok",
        "not alone",
    ),
    ("try", "maybe", "perhaps", "should", "could you", "how about", "suggest", "consider", "might help", "why not"),
    ("studies", "research", "there are", "it is common", "many people", "website", "resources", "%", "called"),
    ("hello", "hi ", "thank", "welcome", "bye", "good luck", "take care", "nice to", "glad"),
)


@dataclass(frozen=True)
class ContextVectors:
    """What the heads read from the dialogue before the reply.

    Attributes:
        seeker_mean: mean embedding of every seeker message (zeros when none).
        seeker_last: mean embedding of the seeker's last block of consecutive messages.
        sup1: mean embedding of the supporter's last block; ``sup2`` the one before.
        position: a few numbers about how far the dialogue has gone.
        n_seeker: the number of seeker messages.
    """

    seeker_mean: np.ndarray
    seeker_last: np.ndarray
    sup1: np.ndarray
    sup2: np.ndarray
    position: np.ndarray
    n_seeker: int
    seeker_bow: np.ndarray
    supporter_bow: np.ndarray  # hashed words of the last two blocks, then the last block's strategy cues
    seeker_cues: np.ndarray
    seeker_last_grams: frozenset[str] = frozenset()  # words and word trigrams of the seeker's last block
    history_grams: frozenset[str] = frozenset()  # word trigrams of every message before the reply


def _mean(vectors: list[np.ndarray], dim: int) -> np.ndarray:
    if not vectors:
        return np.zeros(dim, dtype=np.float32)
    mean: np.ndarray = np.mean(vectors, axis=0)
    norm = float(np.linalg.norm(mean))
    unit: np.ndarray = (mean / norm if norm > 0 else mean).astype(np.float32)
    return unit


def _blocks(history: Sequence[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    blocks: list[tuple[str, list[str]]] = []
    for role, content in history:
        if blocks and blocks[-1][0] == role:
            blocks[-1][1].append(content)
        else:
            blocks.append((role, [content]))
    return blocks


def context_vectors(history: Sequence[tuple[str, str]], lookup: Lookup, dim: int) -> ContextVectors:
    """Summarise the dialogue before the reply.

    Args:
        history: ``(role, content)`` pairs, role ``seeker`` or ``supporter``.
        lookup: the embedding of a text (unit vector of length ``dim``).
        dim: the embedding size.

    Returns:
        The context vectors; an empty history gives zeros (the blind judge's view).
    """
    blocks = _blocks(history)
    seeker_blocks = [texts for role, texts in blocks if role == "seeker"]
    supporter_blocks = [texts for role, texts in blocks if role == "supporter"]
    seeker_all = [lookup(t) for texts in seeker_blocks for t in texts]

    def block_mean(group: list[list[str]], back: int) -> np.ndarray:
        return _mean([lookup(t) for t in group[-back]], dim) if len(group) >= back else _mean([], dim)

    n_msgs = len(history)
    position = np.array(
        [
            math.log1p(n_msgs) / 5,
            min(len(supporter_blocks), 30) / 30,
            float(not supporter_blocks),
            min(n_msgs, 60) / 60,
        ],
        dtype=np.float32,
    )
    return ContextVectors(
        seeker_mean=_mean(seeker_all, dim),
        seeker_last=block_mean(seeker_blocks, 1),
        sup1=block_mean(supporter_blocks, 1),
        sup2=block_mean(supporter_blocks, 2),
        position=position,
        n_seeker=len(seeker_all),
        seeker_bow=bag_of_words([t for texts in seeker_blocks for t in texts]),
        supporter_bow=np.concatenate(
            [
                bag_of_words([t for texts in supporter_blocks[-2:] for t in texts]),
                strategy_cues(" ".join(supporter_blocks[-1]) if supporter_blocks else ""),
            ]
        ),
        seeker_cues=emotion_cues([t for texts in seeker_blocks for t in texts]),
        seeker_last_grams=frozenset(_grams(" ".join(seeker_blocks[-1]), 1) | _grams(" ".join(seeker_blocks[-1]), 3))
        if seeker_blocks
        else frozenset(),
        history_grams=frozenset(g for _, content in history for g in _grams(content, 3)),
    )


def _float32(values: Any) -> np.ndarray:
    """``values`` as a float32 array (numpy 2.3's stubs type a concatenation of mixed parts as Any)."""
    out: np.ndarray = np.asarray(values, dtype=np.float32)
    return out


def _cue_counts(text: str, groups: tuple[tuple[str, ...], ...]) -> np.ndarray:
    text = " " + text.lower() + " "
    counts = np.array([sum(text.count(stem) for stem in group) for group in groups], dtype=np.float32)
    total = float(counts.sum())
    shares = counts / total if total > 0 else counts
    return _float32(np.concatenate([np.log1p(counts), shares]))


def strategy_cues(text: str) -> np.ndarray:
    """How often a reply uses each strategy's typical phrases (log counts, then shares).

    >>> [round(float(v), 2) for v in strategy_cues("Have you thought about trying yoga?")[:6]]
    [1.1, 0.0, 0.0, 0.0, 0.0, 0.69]
    """
    return _cue_counts(text, STRATEGY_CUES)


def emotion_cues(texts: Sequence[str]) -> np.ndarray:
    """How often the texts use each emotion's words (log counts, then shares), one pair per emotion.

    >>> [round(float(v), 2) for v in emotion_cues(["I'm anxious and worried, so sad."])[:3]]
    [1.1, 0.0, 0.69]
    """
    return _cue_counts(" ".join(texts), EMOTION_CUES)


def emotion_features(ctx: ContextVectors) -> np.ndarray:
    """Input of the emotion head: what the seeker has said."""
    return np.concatenate(
        [ctx.seeker_mean, ctx.seeker_last, [math.log1p(ctx.n_seeker) / 3], ctx.seeker_bow, ctx.seeker_cues]
    ).astype(np.float32)


def strategy_features(ctx: ContextVectors, reply: np.ndarray, reply_bow: np.ndarray) -> np.ndarray:
    """Input of the strategy head: the reply (embedding and words), the seeker's and supporter's last words."""
    return _float32(np.concatenate([reply, ctx.seeker_last, ctx.sup1, reply_bow]))


def stage_features(ctx: ContextVectors, reply: np.ndarray, reply_bow: np.ndarray) -> np.ndarray:
    """Input of the stage head: the reply, the supporter's last two blocks (embeddings, words), the position."""
    return _float32(np.concatenate([reply, ctx.sup1, ctx.sup2, ctx.position, reply_bow, ctx.supporter_bow]))


def _words(text: str) -> float:
    return math.log1p(len(text.split())) / 4


def _grams(text: str, n: int) -> set[str]:
    """The word n-grams of ``text`` (lowercased words, punctuation dropped)."""
    words = _WORD.findall(text.lower())
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def _share(part: set[str], whole: frozenset[str]) -> float:
    return len(part & whole) / len(part) if part else 0.0


_WORD = re.compile(r"[a-z0-9']+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_LETTER = re.compile(r"[^\W\d_]")
#: Frequent English words: a reply in another language has few of them.
ENGLISH_WORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "but",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "it",
        "its",
        "that",
        "this",
        "there",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "my",
        "your",
        "me",
        "him",
        "her",
        "our",
        "their",
        "not",
        "no",
        "do",
        "does",
        "did",
        "don't",
        "have",
        "has",
        "had",
        "so",
        "just",
        "what",
        "how",
        "can",
        "could",
        "would",
        "will",
        "should",
        "if",
        "about",
        "as",
        "all",
        "get",
        "feel",
        "like",
        "know",
        "think",
        "really",
        "very",
    ]
)
_FIRST_PERSON = frozenset({"i", "i'm", "me", "my", "myself", "mine", "i've", "i'd", "i'll"})
_SECOND_PERSON = frozenset({"you", "your", "you're", "yourself", "yours", "you've", "you'd", "you'll"})
#: The size of :func:`reply_features`.
N_REPLY_FEATURES = 15


def reply_features(ctx: ContextVectors, text: str) -> np.ndarray:
    """What a reply is on its own and how much of it repeats the dialogue: emptiness, length, sentences
    said twice, repeated trigrams, English words, letters outside ASCII, a cut-off end, a question, the
    seeker's voice (first person) against the supporter's (second person), and the share of the reply's
    words and trigrams found in the seeker's last message and of its trigrams anywhere in the history.

    >>> ctx = context_vectors([("seeker", "I lost my job today.")], lambda t: np.ones(2) / 2**0.5, dim=2)
    >>> copy, reply = reply_features(ctx, "I lost my job today."), reply_features(ctx, "Oh no, what happened?")
    >>> [round(float(v), 2) for v in copy[-3:]], [round(float(v), 2) for v in reply[-3:]]
    ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    """
    stripped = text.strip()
    words = _WORD.findall(stripped.lower())
    n = len(words)
    sentences = [s.strip().lower() for s in _SENTENCE_END.split(stripped) if s.strip()]
    trigrams = [" ".join(words[i : i + 3]) for i in range(n - 2)]
    letters = _LETTER.findall(stripped)
    unigrams, trigram_set = set(words), set(trigrams)
    return _float32(
        [
            float(n == 0),
            _words(stripped),
            math.log1p(len(sentences)) / 2,
            1.0 - len(set(sentences)) / len(sentences) if sentences else 0.0,
            1.0 - len(trigram_set) / len(trigrams) if trigrams else 0.0,
            sum(w in ENGLISH_WORDS for w in words) / n if n else 0.0,
            sum(not c.isascii() for c in letters) / len(letters) if letters else 0.0,
            float(bool(stripped) and stripped[-1] not in ".!?)\"'"),
            float("?" in stripped),
            sum(w in _FIRST_PERSON for w in words) / n if n else 0.0,
            sum(w in _SECOND_PERSON for w in words) / n if n else 0.0,
            1.0 - len(unigrams) / n if n else 0.0,
            _share(unigrams - ENGLISH_WORDS, ctx.seeker_last_grams),
            _share(trigram_set, ctx.seeker_last_grams),
            _share(trigram_set, ctx.history_grams),
        ]
    )


def tone_features(ctx: ContextVectors, reply: np.ndarray, text: str, alone: np.ndarray | None = None) -> np.ndarray:
    """Input of the tone head: the reply on its own (embedding, :func:`reply_features`, passed as
    ``alone`` when already computed, strategy cues), to tell a supportive reply from a dismissive,
    hostile, rambling or foreign one."""
    alone = reply_features(ctx, text) if alone is None else alone
    return _float32(np.concatenate([reply, alone, strategy_cues(text)]))


def fit_features(ctx: ContextVectors, reply: np.ndarray, text: str, alone: np.ndarray | None = None) -> np.ndarray:
    """Input of the fit head: how a reply relates to the dialogue before it, and what it is on its own
    (:func:`reply_features`, passed as ``alone`` when already computed)."""
    alone = reply_features(ctx, text) if alone is None else alone
    cosines = [
        float(reply @ ctx.seeker_last),
        float(reply @ ctx.seeker_mean),
        float(reply @ ctx.sup1),
        float(reply @ ctx.sup2),
        _words(text),
    ]
    return _float32(
        np.concatenate(
            [
                reply * ctx.seeker_last,
                reply * ctx.seeker_mean,
                reply * ctx.sup1,
                reply,
                cosines,
                alone,
                strategy_cues(text),
            ]
        )
    )


def verdict_features(probs: np.ndarray, stated: int, prior: np.ndarray) -> np.ndarray:
    """Input of a step's verdict head: how likely the stated value is, against the alternatives.

    >>> [round(float(v), 3) for v in verdict_features(np.array([0.5, 0.25, 0.25]), 1, np.array([0.4, 0.3, 0.3]))]
    [-1.386, -1.204, -0.693, 0.0, -0.182]
    """
    p = np.clip(probs, 1e-6, 1.0)
    stated_p = float(p[stated])
    return np.array(
        [
            math.log(stated_p),
            math.log(max(float(prior[stated]), 1e-6)),
            math.log(float(p.max())),
            float(stated == int(p.argmax())),
            math.log(stated_p) - math.log(max(float(prior[stated]), 1e-6)),
        ],
        dtype=np.float32,
    )


def preference_features(
    fit_reply: float,
    fit_reference: float,
    identical: bool,
    cosine: float,
    reply_text: str,
    reference_text: str,
    reply_alone: np.ndarray,
    reference_alone: np.ndarray,
    tone_reply: float = 0.0,
    tone_reference: float = 0.0,
) -> np.ndarray:
    """Input of the preference head: the fit of both replies, whether they are the same, their
    similarity, what each is on its own (:func:`reply_features`) and the tone head's logits of both.

    >>> z = np.zeros(N_REPLY_FEATURES)
    >>> preference_features(1.0, -1.0, False, 0.5, "a b", "c", z, z).shape
    (42,)
    """
    same = float(identical)
    return _float32(
        np.concatenate(
            [
                [
                    fit_reply,
                    fit_reference,
                    fit_reply - fit_reference,
                    same,
                    cosine,
                    fit_reply * same,
                    (fit_reply - fit_reference) * (1 - same),
                    _words(reply_text),
                    _words(reference_text),
                    tone_reply,
                    tone_reference,
                    tone_reply - tone_reference,
                ],
                reply_alone,
                reference_alone,
            ]
        )
    )
