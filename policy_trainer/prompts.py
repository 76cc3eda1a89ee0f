"""OpenRLHF prompt rows from ESConv: one row per sampled round, with the label the rewards need.

Rounds are picked with COMPEER's Gaussian sparse sampling (eq. 1, :func:`services.data.esconv.gaussian_sparse_sample`,
the same draw the judge's data uses). A row is::

    {"input": [{"role": "system", ...}, {"role": "user"|"assistant", ...}, ...],
     "label": "<JSON of services.contracts.openrlhf.PromptLabel>"}

``input`` is the chat OpenRLHF renders with the policy's template (``--data.apply_chat_template``):
the system instruction teaching the reasoning schema and the output format, then the dialogue so far,
the seeker as ``user`` and the supporter as ``assistant`` (consecutive messages of one speaker joined,
since many chat templates need the roles to alternate). ``label`` is a JSON string, so that any
dataset loader keeps it whole; its fields are in ``docs/training.md``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from typing import Any

from services.contracts.openrlhf import PromptLabel
from services.core.schemas import RESPONSE_TAG, SCHEMAS
from services.core.types import SchemaName
from services.data.esconv import ESConvMessage, dialogue_messages, extract_rounds, gaussian_sparse_sample

_CHAT_ROLE = {"seeker": "user", "supporter": "assistant"}


def system_instruction(schema_name: SchemaName) -> str:
    """The system message teaching the policy the schema's reasoning steps and the output format.

    >>> text = system_instruction("compeer")
    >>> "<support_strategy>" in text and "Reflection of feelings" in text
    True
    """
    schema = SCHEMAS[schema_name]
    lines = [
        "You are a supporter in an emotional support conversation. The user is the help seeker. Before you "
        "reply, reason in these steps, each inside its own tag, in this order:",
        "",
    ]
    for k, step in enumerate(schema.steps, 1):
        lines.append(f"{k}. <{step.name}>: {step.title}. {step.description}")
        for f in step.fields:
            values = ", ".join(f.values)
            lines.append(f"   Write the line '{f.name.capitalize()}: <value>', {f.description}, one of: {values}.")
    lines += [
        "",
        f"Then write your reply to the seeker inside <{RESPONSE_TAG}>. Write nothing outside the tags. Example:",
        "",
        schema.example,
    ]
    return "\n".join(lines)


def chat_input(messages: Sequence[ESConvMessage], schema_name: SchemaName) -> list[dict[str, str]]:
    """The chat of one prompt: the instruction, then the dialogue with each speaker's turns joined."""
    chat = [{"role": "system", "content": system_instruction(schema_name)}]
    for message in messages:
        role = _CHAT_ROLE[message.role]
        if len(chat) > 1 and chat[-1]["role"] == role:
            chat[-1]["content"] += "\n" + message.content
        else:
            chat.append({"role": role, "content": message.content})
    return chat


def dialogue_rows(
    split: str,
    d_index: int,
    dialogue: dict[str, Any],
    *,
    group_size: int,
    rounds_per_dialogue: int = 4,
    seed: int = 0,
    schema_name: SchemaName = "compeer",
) -> list[dict[str, Any]]:
    """The prompt rows of one dialogue: its Gaussian-sampled rounds.

    Args:
        split: the ESConv split (part of the ids and of the random seed).
        d_index: the dialogue's index in its split file.
        dialogue: the ESConv dialogue.
        group_size: the run's ``--rollout.n_samples_per_prompt`` (written in each label).
        rounds_per_dialogue: Ns, rounds drawn per dialogue.
        seed: a dialogue's rows depend only on (seed, split, d_index).
        schema_name: the reasoning schema the policy is taught.
    """
    rng = random.Random(f"openrlhf:{seed}:{split}:{d_index}")
    messages = dialogue_messages(dialogue)
    rounds = extract_rounds(messages)
    rows = []
    for r_index in gaussian_sparse_sample(len(rounds), rounds_per_dialogue, rng):
        rnd = rounds[r_index]
        history = messages[: rnd.start]
        label = PromptLabel.model_validate(
            {
                "group_id": f"esconv-{split}-{d_index:04d}-{r_index:03d}",
                "group_size": group_size,
                "schema": schema_name,
                "history": [{"role": m.role, "content": m.content} for m in history],
                "reference": rnd.reply,
                # Bookkeeping for analysis; the rewards do not read these.
                "dialogue_index": d_index,
                "round_index": r_index,
                "strategy": rnd.strategy,
                "emotion": str(dialogue.get("emotion_type", "")).strip().lower(),
            }
        )
        label_json = label.model_dump_json(by_alias=True, exclude_none=True)
        rows.append({"input": chat_input(history, schema_name), "label": label_json})
    return rows


def build_rows(
    dialogues: Sequence[dict[str, Any]],
    split: str,
    *,
    group_size: int,
    rounds_per_dialogue: int = 4,
    seed: int = 0,
    schema_name: SchemaName = "compeer",
) -> Iterator[dict[str, Any]]:
    """Every prompt row of a split, dialogue by dialogue (see :func:`dialogue_rows`)."""
    for d_index, dialogue in enumerate(dialogues):
        yield from dialogue_rows(
            split,
            d_index,
            dialogue,
            group_size=group_size,
            rounds_per_dialogue=rounds_per_dialogue,
            seed=seed,
            schema_name=schema_name,
        )


def read_label(row: dict[str, Any]) -> PromptLabel:
    """A row's label, read back."""
    return PromptLabel.model_validate(json.loads(row["label"]) if isinstance(row["label"], str) else row["label"])
