"""The judge conversation: versioned templates for the ``unified``, ``prm`` and ``orm`` modes.

``unified`` is one multi-turn conversation per candidate: the first user turn carries the dialogue and
step 1, each later turn one more step, the last turn the reference and the candidate's reply. Every
turn extends the previous one, so an engine with prefix caching computes the dialogue once. ``prm``
asks about the steps only, ``orm`` about the reply only.

Each turn is a :class:`JudgeTurn`: what the judge is asked and what kind of answer is expected, so any
backend (a generative model, the CPU classifier, the fake) answers the same questions and every answer
goes through the same parsers in :mod:`services.core.judgments`.

>>> from services.core.candidate import parse_candidate
>>> from services.core.schemas import SCHEMAS
>>> s = SCHEMAS["compeer"]
>>> from services.core.types import DialogueMessage
>>> history = [DialogueMessage("seeker", "I lost my job.")]
>>> task = build_task(s, "unified", history, parse_candidate(s.example, s), "Oh no.")
>>> [t.kind for t in task.turns]
['step', 'step', 'step', 'preference']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from services.core.candidate import ParsedCandidate, ParsedStep
from services.core.judgments import PREFERENCE_OPTIONS, PREFERENCE_TEXT
from services.core.schemas import Schema, StepSpec
from services.core.types import DialogueMessage, JudgeMode, TurnKind

TEMPLATE_VERSION = "unifireward-esc-v1"

#: Longest rationale (characters) a judgment may write when structured outputs are on.
RATIONALE_MAX_CHARS = 600
_ANSWER_LINE: dict[TurnKind, str] = {"step": r"Verdict: (True|False)", "preference": r"Preference: [ABCD]"}


def judgment_regex(kind: TurnKind, max_chars: int = RATIONALE_MAX_CHARS) -> str:
    """The regular expression a judgment must match when structured outputs are on.

    A one-line rationale of at most ``max_chars`` characters, then the verdict (or preference) line;
    whatever matches parses with :mod:`services.core.judgments`.

    >>> print(judgment_regex("step", 40))
    [^\\n]{1,40}\\nVerdict: (True|False)
    """
    return rf"[^\n]{{1,{max_chars}}}\n{_ANSWER_LINE[kind]}"


def judgment_token_budget(max_chars: int = RATIONALE_MAX_CHARS) -> int:
    """The most tokens a judgment matching :func:`judgment_regex` can take.

    Every token writes at least one byte and a character is at most 4 bytes of UTF-8, so the
    rationale takes at most ``4 * max_chars`` tokens; the answer line and the end-of-sequence token
    fit in 32 more. A ``max_tokens`` of at least this can never cut a structured judgment short.

    >>> judgment_token_budget(600)
    2432
    """
    return 4 * max_chars + 32


STEP_JUDGMENT_REGEX = judgment_regex("step")
PREFERENCE_JUDGMENT_REGEX = judgment_regex("preference")

SYSTEM_PROMPT = (
    "You are UnifiReward, a careful judge of emotional support conversations. A supporter wrote "
    "reasoning steps about a help-seeker and then a reply. Check each step against the dialogue, then "
    "compare the reply with a reference reply in light of the steps you checked. Answer each question "
    "with a one-sentence rationale, then the verdict line exactly as asked."
)
_STEP_QUESTION = (
    "Is this step correct for this dialogue? Give a one-sentence rationale, then end with "
    '"Verdict: True" or "Verdict: False".'
)
_PREFERENCE_QUESTION = (
    "Which reply is better for the seeker at this point of the dialogue?\n"
    + "\n".join(f"({letter}) {PREFERENCE_TEXT[option]}" for letter, option in PREFERENCE_OPTIONS.items())
    + '\nGive a one-sentence rationale, then end with "Preference: " and the letter.'
)
_ROLE_NAMES = {"seeker": "Seeker", "supporter": "Supporter"}


@dataclass(frozen=True)
class JudgeTurn:
    """One question to the judge.

    Attributes:
        kind: ``step`` (verdict expected) or ``preference`` (one of four options expected).
        prompt: the user message of this turn, rendered with the template.
        step: the step judged (None for the preference turn).
    """

    kind: TurnKind
    prompt: str
    step: str | None = None


@dataclass(frozen=True)
class JudgeTask:
    """Everything a backend needs to judge one candidate.

    Generative backends send ``system`` and the ``turns`` as one conversation, each answer appended
    before the next turn. Backends that read structure (the CPU classifier) use the other fields.
    Steps the candidate did not write are not asked about; :mod:`services.core.rewards` counts them wrong.
    """

    schema: Schema
    mode: JudgeMode
    history: tuple[DialogueMessage, ...]
    candidate: ParsedCandidate
    reference: str | None
    turns: tuple[JudgeTurn, ...]
    system: str = SYSTEM_PROMPT
    template_version: str = TEMPLATE_VERSION
    asked_steps: tuple[str, ...] = field(default=())


def render_dialogue(history: Sequence[DialogueMessage]) -> str:
    """The dialogue as the judge reads it, one ``Seeker:``/``Supporter:`` line per message."""
    if not history:
        return "(the dialogue has not started)"
    return "\n".join(f"{_ROLE_NAMES[t.role]}: {t.content.strip()}" for t in history)


def render_step(spec: StepSpec, step: ParsedStep) -> str:
    """A step as the judge reads it: fields first, then the free text."""
    lines = [f"{name.capitalize()}: {value}" for name, value in step.fields.items()]
    lines += [f"{name.capitalize()}: {raw} (not an allowed value)" for name, raw in step.invalid.items()]
    if step.text:
        lines.append(step.text)
    return "\n".join(lines) or "(empty)"


def _step_prompt(schema: Schema, spec: StepSpec, step: ParsedStep, first: bool, dialogue: str) -> str:
    index = [s.name for s in schema.steps].index(spec.name) + 1
    head = f"Dialogue so far:\n{dialogue}\n\n" if first else ""
    return (
        f"{head}Reasoning step {index} of {len(schema.steps)}: {spec.title}. {spec.description}\n"
        f"{render_step(spec, step)}\n\n{_STEP_QUESTION}"
    )


def _preference_prompt(response: str | None, reference: str, first: bool, dialogue: str, swapped: bool = False) -> str:
    head = f"Dialogue so far:\n{dialogue}\n\n" if first else ""
    reply = response.strip() if response else "(the supporter wrote no reply)"
    replies = [("reference", reference.strip()), ("candidate", reply)]
    (first_name, first_text), (second_name, second_text) = replies[::-1] if swapped else replies
    return (
        f"{head}Now the supporter's next message. First reply ({first_name}): {first_text}\n"
        f"Second reply ({second_name}): {second_text}\n\n{_PREFERENCE_QUESTION}"
    )


def build_task(
    schema: Schema,
    mode: JudgeMode,
    history: Sequence[DialogueMessage],
    candidate: ParsedCandidate,
    reference: str | None,
) -> JudgeTask:
    """Build the judge conversation for one candidate.

    Args:
        schema: the reasoning schema the candidate follows.
        mode: ``unified`` (steps then reply), ``prm`` (steps) or ``orm`` (reply).
        history: the dialogue before the candidate's reply.
        candidate: the parsed candidate.
        reference: the reference reply; required by ``unified`` and ``orm``.

    Returns:
        The task with one :class:`JudgeTurn` per written step (not in ``orm``) and a final preference
        turn (not in ``prm``).

    Raises:
        ValueError: ``reference`` is missing in a mode that compares replies.
    """
    dialogue = render_dialogue(history)
    turns: list[JudgeTurn] = []
    if mode in ("unified", "prm"):
        for spec in schema.steps:
            step = candidate.steps.get(spec.name)
            if step is None:
                continue
            turns.append(JudgeTurn("step", _step_prompt(schema, spec, step, not turns, dialogue), spec.name))
    if mode in ("unified", "orm"):
        if reference is None:
            raise ValueError(f"mode {mode!r} compares the reply with a reference; none was given")
        turns.append(JudgeTurn("preference", _preference_prompt(candidate.response, reference, not turns, dialogue)))
    return JudgeTask(
        schema=schema,
        mode=mode,
        history=tuple(history),
        candidate=candidate,
        reference=reference,
        turns=tuple(turns),
        asked_steps=tuple(t.step for t in turns if t.step is not None),
    )


def judge_messages(task: JudgeTask, answers: list[str]) -> list[dict[str, str]]:
    """The chat messages for the next turn, given the answers so far (OpenAI chat format).

    Args:
        task: the judge task.
        answers: the judge's answers to the first ``len(answers)`` turns.

    Returns:
        ``system``, then alternating ``user``/``assistant`` messages ending with the next user turn.
    """
    messages = [{"role": "system", "content": task.system}]
    for turn, answer in zip(task.turns, answers, strict=False):
        messages += [{"role": "user", "content": turn.prompt}, {"role": "assistant", "content": answer}]
    if len(answers) < len(task.turns):
        messages.append({"role": "user", "content": task.turns[len(answers)].prompt})
    return messages


def swap_preference(task: JudgeTask) -> JudgeTask:
    """The same task with the two replies of its preference turn in the other order.

    The earlier turns are unchanged, so a conversation that has answered them can ask both orders
    from the same prefix. The swapped turn's letters mean the opposite: its "first" is the candidate.

    Raises:
        ValueError: the task has no preference turn (``prm``).
    """
    if not task.turns or task.turns[-1].kind != "preference" or task.reference is None:
        raise ValueError("only a task that ends with a preference turn can be swapped")
    prompt = _preference_prompt(
        task.candidate.response, task.reference, len(task.turns) == 1, render_dialogue(task.history), swapped=True
    )
    return replace(task, turns=(*task.turns[:-1], JudgeTurn("preference", prompt)))


def single_pass_prompt(task: JudgeTask) -> str:
    """Every turn of ``task`` in one user message, to be answered in one generation.

    The baseline that unified multi-turn judging is measured against (``bench/vllm_judging.py``):
    the same questions, the dialogue once, all verdicts written in one go.
    """
    questions = [f"Question {i}.\n{turn.prompt}" for i, turn in enumerate(task.turns, 1)]
    return "\n\n".join(questions) + (
        f"\n\nAnswer the {len(task.turns)} questions in order. Begin each answer on a new line with "
        '"Answer N: " (N the question\'s number), then a one-sentence rationale, then its last line as asked.'
    )


def single_pass_messages(task: JudgeTask) -> list[dict[str, str]]:
    """The chat messages of a single-pass judgment (OpenAI chat format)."""
    return [{"role": "system", "content": task.system}, {"role": "user", "content": single_pass_prompt(task)}]


def single_pass_regex(task: JudgeTask, max_chars: int = RATIONALE_MAX_CHARS) -> str:
    """The structured-output regex of a single-pass judgment: one :func:`judgment_regex` per turn.

    >>> from services.core.candidate import parse_candidate
    >>> from services.core.schemas import SCHEMAS
    >>> s = SCHEMAS["compeer"]
    >>> task = build_task(s, "orm", [], parse_candidate(s.example, s), "Hi.")
    >>> print(single_pass_regex(task, 20))
    Answer 1: [^\\n]{1,20}\\nPreference: [ABCD]
    """
    return r"\n".join(f"Answer {i}: {judgment_regex(turn.kind, max_chars)}" for i, turn in enumerate(task.turns, 1))


_ANSWER_MARK = re.compile(r"^Answer (\d{1,3}): ", re.MULTILINE)


def split_single_pass(task: JudgeTask, text: str) -> list[str]:
    """Cut a single-pass judgment into one answer per turn, for the usual parsers.

    Args:
        task: the task that was judged.
        text: the judge's one answer.

    Returns:
        One text per turn; an answer the judge did not write (or wrote twice: the first counts) is
        empty, which parses as ``empty``.

    >>> from services.core.candidate import parse_candidate
    >>> from services.core.schemas import SCHEMAS
    >>> s = SCHEMAS["compeer"]
    >>> task = build_task(s, "prm", [], parse_candidate(s.example, s), None)
    >>> split_single_pass(task, "Answer 1: Fits.\\nVerdict: True\\nAnswer 3: No.\\nVerdict: False")
    ['Fits.\\nVerdict: True', '', 'No.\\nVerdict: False']
    """
    answers = [""] * len(task.turns)
    marks = list(_ANSWER_MARK.finditer(text))
    for j, mark in enumerate(marks):
        index = int(mark.group(1)) - 1
        end = marks[j + 1].start() if j + 1 < len(marks) else len(text)
        if 0 <= index < len(answers) and not answers[index]:
            answers[index] = text[mark.end() : end].strip()
    return answers
