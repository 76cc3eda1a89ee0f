"""Score judge items with the trained heads and write the judgments as a generative judge would.

:class:`JudgeModel` reads the fields of the candidate's steps (``Stage:``, ``Emotion:``,
``Strategy:``) from ``task.candidate`` and the dialogue from ``task.history`` and ``task.reference``,
predicts each field from the dialogue, and answers every turn with a structured verdict: the verdict
or option, the heads' probabilities, and a one-sentence rationale carrying the numbers followed by the
``Verdict:`` or ``Preference:`` line a generative judge would write (kept for ``judgments.raw``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from reward_server.judge_model import features as F
from reward_server.judge_model.heads import Artifact
from services.core.judge_prompts import JudgeTask
from services.core.judgments import PREFERENCE_OPTIONS, Judgment, PreferenceJudgment, StepJudgment
from services.core.schemas import EMOTIONS, STAGES, STRATEGIES
from services.core.types import Preference

#: The preference head's outputs, in the order of the options the judge is offered (A..D).
PREFERENCES: tuple[Preference, ...] = tuple(PREFERENCE_OPTIONS.values())
_LETTERS: dict[str, str] = {option: letter for letter, option in PREFERENCE_OPTIONS.items()}
#: field name -> (head name, vocabulary)
FIELD_HEADS: dict[str, tuple[str, tuple[str, ...]]] = {
    "stage": ("stage", STAGES),
    "emotion": ("emotion", EMOTIONS),
    "strategy": ("strategy", STRATEGIES),
}
Embed = Callable[[list[str]], np.ndarray]


@dataclass
class ItemInputs:
    """The first-level head inputs of one item."""

    emotion: np.ndarray
    strategy: np.ndarray
    stage: np.ndarray
    fit_reply: np.ndarray
    fit_reference: np.ndarray
    identical: bool
    cosine: float
    reply_text: str
    reference_text: str
    guided_by_reference: bool
    reply_alone: np.ndarray
    reference_alone: np.ndarray
    tone_reply: np.ndarray
    tone_reference: np.ndarray


@dataclass
class ItemScores:
    """What the heads say about one item."""

    probs: dict[str, np.ndarray]  # field -> distribution over its vocabulary
    fit_reply: float  # logits of the fit head
    fit_reference: float
    tone_reply: float  # logits of the tone head (0 without one)
    tone_reference: float
    preference: np.ndarray  # over PREFERENCES
    guided_by_reference: bool


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).lower() == " ".join(b.split()).lower()


def item_inputs(
    history: Sequence[tuple[str, str]],
    reply: str | None,
    reference: str | None,
    lookup: F.Lookup,
    dim: int,
    blind: bool = False,
) -> ItemInputs:
    """Build the head inputs of one item.

    Args:
        history: ``(role, content)`` pairs before the reply.
        reply: the candidate's reply (None when it wrote none).
        reference: the reference reply, if any.
        lookup: text -> unit embedding.
        dim: embedding size.
        blind: ignore the history (the blind baseline).

    Returns:
        The inputs; strategy and stage read the reference when there is one (reference-guided),
        else the candidate's reply.
    """
    ctx = F.context_vectors([] if blind else history, lookup, dim)
    zero = np.zeros(dim, dtype=np.float32)
    reply_text, reference_text = reply or "", reference or ""
    r = lookup(reply_text) if reply_text else zero
    ref = lookup(reference_text) if reference_text else zero
    guide = ref if reference_text else r
    guide_text = reference_text or reply_text
    guide_bow = np.concatenate([F.bag_of_words([guide_text]), F.strategy_cues(guide_text)])
    reply_alone, reference_alone = F.reply_features(ctx, reply_text), F.reply_features(ctx, reference_text)
    return ItemInputs(
        emotion=F.emotion_features(ctx),
        strategy=F.strategy_features(ctx, guide, guide_bow),
        stage=F.stage_features(ctx, guide, guide_bow),
        fit_reply=F.fit_features(ctx, r, reply_text, reply_alone),
        fit_reference=F.fit_features(ctx, ref, reference_text, reference_alone),
        identical=bool(reply_text) and _same(reply_text, reference_text),
        cosine=float(r @ ref),
        reply_text=reply_text,
        reference_text=reference_text,
        guided_by_reference=bool(reference_text),
        reply_alone=reply_alone,
        reference_alone=reference_alone,
        tone_reply=F.tone_features(ctx, r, reply_text, reply_alone),
        tone_reference=F.tone_features(ctx, ref, reference_text, reference_alone),
    )


def preference_inputs(
    fit_reply: float, fit_reference: float, x: ItemInputs, tone_reply: float = 0.0, tone_reference: float = 0.0
) -> np.ndarray:
    """The preference head's input of one item, given the fit and tone heads' logits of both replies
    (an empty text has tone 0)."""
    return F.preference_features(
        fit_reply,
        fit_reference,
        x.identical,
        x.cosine,
        x.reply_text,
        x.reference_text,
        x.reply_alone,
        x.reference_alone,
        tone_reply if x.reply_text else 0.0,
        tone_reference if x.reference_text else 0.0,
    )


def score_items(artifact: Artifact, inputs: Sequence[ItemInputs]) -> list[ItemScores]:
    """Run the first-level heads and the preference head on a batch of items."""
    if not inputs:
        return []
    heads = artifact.heads
    probs = {
        name: heads[head].softmax(np.stack([getattr(x, name) for x in inputs]))
        for name, (head, _) in FIELD_HEADS.items()
    }
    fit_reply = heads["fit"].logits(np.stack([x.fit_reply for x in inputs]))[:, 0]
    fit_ref = heads["fit"].logits(np.stack([x.fit_reference for x in inputs]))[:, 0]
    if "tone" in heads:
        tone_reply = heads["tone"].logits(np.stack([x.tone_reply for x in inputs]))[:, 0]
        tone_ref = heads["tone"].logits(np.stack([x.tone_reference for x in inputs]))[:, 0]
    else:
        tone_reply = tone_ref = np.zeros(len(inputs), dtype=np.float32)
    pref_x = np.stack(
        [
            preference_inputs(float(a), float(b), x, float(t), float(u))
            for a, b, x, t, u in zip(fit_reply, fit_ref, inputs, tone_reply, tone_ref, strict=True)
        ]
    )
    pref = heads["preference"].softmax(pref_x) if "preference" in heads else np.full((len(inputs), 4), 0.25)
    return [
        ItemScores(
            probs={name: probs[name][i] for name in probs},
            fit_reply=float(fit_reply[i]),
            fit_reference=float(fit_ref[i]),
            tone_reply=float(tone_reply[i]),
            tone_reference=float(tone_ref[i]),
            preference=pref[i],
            guided_by_reference=x.guided_by_reference,
        )
        for i, x in enumerate(inputs)
    ]


def step_verdict(artifact: Artifact, field: str, stated: str, probs: np.ndarray) -> tuple[bool, float]:
    """The verdict on a stated field value: the verdict head's P(correct) against the tuned threshold."""
    _, vocab = FIELD_HEADS[field]
    prior = np.asarray(artifact.meta["priors"][field], dtype=np.float32)
    x = F.verdict_features(probs, vocab.index(stated), prior)[None, :]
    p_ok = float(artifact.heads[f"verdict_{field}"].sigmoid(x)[0])
    return p_ok >= float(artifact.meta["thresholds"][field]), p_ok


_SOURCES = {
    "stage": (
        "Judging from the supporter's recent turns and {guide}, the conversation is at the {top} stage ({p:.2f})"
    ),
    "emotion": "The seeker's messages point to {top} ({p:.2f})",
    "strategy": "{Guide} reads as {top} ({p:.2f})",
}


def _step(text: str, verdict: bool, p_correct: float | None = None) -> StepJudgment:
    return StepJudgment(text=f"{text}\nVerdict: {verdict}", verdict=verdict, status="ok", p_correct=p_correct)


def _step_answer(artifact: Artifact, task: JudgeTask, step_name: str, scores: ItemScores) -> StepJudgment:
    """The verdict on one step; ``p_correct`` is the verdict heads' least P(correct) over the fields checked,
    None where a rule decided (a missing step or field, a positive sentiment) or nothing could be checked."""
    step = task.candidate.steps.get(step_name)
    spec = task.schema.step(step_name)
    checked = [f.name for f in spec.fields if f.name in FIELD_HEADS]
    if step is None:
        return _step("The step is missing.", False)
    if not checked:
        return _step("This step carries no field the classifier can check against the dialogue; it is accepted.", True)
    parts: list[str] = []
    ok_all = True
    p_fields: list[float] = []
    by_rule = False
    for field in checked:
        stated = step.fields.get(field)
        if stated is None:
            parts.append(f"the step states no valid {field}")
            ok_all = False
            by_rule = True
            continue
        probs = scores.probs[field]
        vocab = FIELD_HEADS[field][1]
        ok, p_ok = step_verdict(artifact, field, stated, probs)
        p_fields.append(p_ok)
        top = int(np.argmax(probs))
        guide = "the reference reply" if scores.guided_by_reference else "the candidate's reply"
        head = _SOURCES[field].format(top=vocab[top], p=float(probs[top]), guide=guide, Guide=guide.capitalize())
        if not ok:
            fits = "which does not fit"
        else:
            fits = "which fits" if top == vocab.index(stated) else "which is plausible enough"
        parts.append(f"{head}; the step names {stated} ({float(probs[vocab.index(stated)]):.2f}), {fits}")
        ok_all = ok_all and ok
    sentiment = step.fields.get("sentiment")
    if "sentiment" in [f.name for f in spec.fields] and sentiment == "positive":
        parts.append("a positive sentiment does not match a seeker asking for support")
        ok_all = False
        by_rule = True
    text = "; ".join(parts)
    return _step(f"{text[0].upper()}{text[1:]}.", ok_all, None if by_rule else min(p_fields))


def _sig(x: float) -> float:
    """The logistic function, without overflow for large ``|x|``."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def preference_choice(bias: Sequence[float], probs: np.ndarray) -> np.ndarray:
    """The option chosen from the preference head's distribution(s): the largest ``log p + bias``.

    The bias (one per option, tuned on valid, ``meta["preference_bias"]``) is a decision threshold like
    the verdict thresholds; the probabilities themselves, which ``expected`` scoring uses, are untouched.

    >>> int(preference_choice([0.0, 0.0, 0.5, 0.0], np.array([0.4, 0.0, 0.3, 0.3])))
    2
    """
    log_p = np.log(np.clip(probs, 1e-12, 1.0)) + np.asarray(bias, dtype=np.float64)
    choice: np.ndarray = np.argmax(log_p, axis=-1)
    return choice


def _preference_answer(artifact: Artifact, task: JudgeTask, scores: ItemScores) -> PreferenceJudgment:
    """The preference, with the head's distribution over the options (None where no reply was written)."""
    if not task.candidate.response:
        text = "The candidate wrote no reply, so the reference is better.\nPreference: A"
        return PreferenceJudgment(text=text, preference="first", status="ok")
    index = int(preference_choice(artifact.meta.get("preference_bias", [0.0] * 4), scores.preference))
    choice = PREFERENCES[index]
    conf = float(scores.preference[index])
    c, r = _sig(scores.fit_reply), _sig(scores.fit_reference)
    text = {
        "first": f"The reference fits what the seeker said better than the candidate's reply ({r:.2f} vs {c:.2f})",
        "second": f"The candidate's reply fits what the seeker said better than the reference ({c:.2f} vs {r:.2f})",
        "equal": f"Both replies fit what the seeker said about equally well ({c:.2f} and {r:.2f})",
        "neither": f"Neither reply fits what the seeker said ({c:.2f} and {r:.2f})",
    }[choice]
    probabilities = {option: float(p) for option, p in zip(PREFERENCES, scores.preference, strict=True)}
    return PreferenceJudgment(
        text=f"{text}; confidence {conf:.2f}.\nPreference: {_LETTERS[choice]}",
        preference=choice,
        status="ok",
        probabilities=probabilities,
    )


class JudgeModel:
    """The trained heads plus an embedding function, answering :class:`JudgeTask` objects.

    Args:
        artifact: the loaded artifact.
        embed: texts -> unit embeddings (n, dim); called once per batch on texts not seen before.
        cache_size: embeddings kept between batches (dialogue histories repeat across candidates).
    """

    def __init__(self, artifact: Artifact, embed: Embed, cache_size: int = 50_000) -> None:
        self.artifact = artifact
        self.embed = embed
        self.dim = int(artifact.meta["dim"])
        self.blind = bool(artifact.meta.get("blind", False))
        self.cache_size = cache_size
        self._cache: dict[str, np.ndarray] = {}

    def _ensure(self, texts: set[str]) -> None:
        """Embed what is not cached yet; when the cache would overflow, keep only this batch's texts."""
        todo = sorted(t for t in texts if t and t not in self._cache)
        if not todo:
            return
        if len(self._cache) + len(todo) > self.cache_size:
            self._cache = {t: self._cache[t] for t in texts if t in self._cache}
        for text, vector in zip(todo, self.embed(todo), strict=True):
            self._cache[text] = np.asarray(vector, dtype=np.float32)

    def _lookup(self, text: str) -> np.ndarray:
        """A cached embedding; an empty text embeds to zeros."""
        return self._cache[text] if text else np.zeros(self.dim, dtype=np.float32)

    def score(self, tasks: Sequence[JudgeTask]) -> list[ItemScores]:
        """The heads' view of each task."""
        texts: set[str] = set()
        for task in tasks:
            if not self.blind:
                texts.update(t.content for t in task.history)
            texts.update(t for t in (task.candidate.response, task.reference) if t)
        self._ensure(texts)
        inputs = [
            item_inputs(
                [(t.role, t.content) for t in task.history],
                task.candidate.response,
                task.reference,
                self._lookup,
                self.dim,
                self.blind,
            )
            for task in tasks
        ]
        return score_items(self.artifact, inputs)

    def answer(self, tasks: Sequence[JudgeTask]) -> list[list[Judgment]]:
        """One judgment per turn of every task."""
        answers: list[list[Judgment]] = []
        for task, scores in zip(tasks, self.score(tasks), strict=True):
            texts: list[Judgment] = []
            for turn in task.turns:
                if turn.kind == "step" and turn.step is not None:
                    texts.append(_step_answer(self.artifact, task, turn.step, scores))
                else:
                    texts.append(_preference_answer(self.artifact, task, scores))
            answers.append(texts)
        return answers
