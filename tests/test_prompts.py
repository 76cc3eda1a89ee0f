"""OpenRLHF prompt rows from ESConv (``unifireward data openrlhf-prompts``)."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policy_trainer.prompts import build_rows, chat_input, dialogue_rows, read_label, system_instruction
from services.contracts.openrlhf import parse_label
from services.core.schemas import SCHEMAS
from services.data.esconv import dialogue_messages, extract_rounds, gaussian_sparse_sample, load_split, split_path
from unifireward.cli import app

ESCONV = Path(__file__).resolve().parents[2] / "shared" / "data" / "esconv"


@pytest.fixture(scope="module")
def train() -> list[dict[str, object]]:
    return load_split(split_path(ESCONV, "train"))


def test_rows_are_the_gaussian_sampled_rounds_with_their_gold_reply(train: list[dict[str, object]]) -> None:
    for d in range(20):
        rows = dialogue_rows("train", d, train[d], group_size=4, seed=3)
        rounds = extract_rounds(dialogue_messages(train[d]))
        drawn = gaussian_sparse_sample(len(rounds), 4, random.Random(f"openrlhf:3:train:{d}"))
        labels = [read_label(r) for r in rows]
        assert [label.model_extra["round_index"] for label in labels] == drawn  # type: ignore[index]
        for label, r_index in zip(labels, drawn, strict=True):
            rnd = rounds[r_index]
            assert label.reference == rnd.reply and label.group_size == 4 and label.schema_name == "compeer"
            assert len(label.history) == rnd.start and label.history[-1].role == "seeker"


def test_a_row_is_a_chat_ending_on_the_seeker_and_a_json_label(train: list[dict[str, object]]) -> None:
    (row, *_) = dialogue_rows("train", 0, train[0], group_size=8)
    assert isinstance(row["label"], str)
    label = parse_label(row["label"])  # the reward side's reader accepts it
    assert label.group_id == "esconv-train-0000-001" and label.group_size == 8
    chat = row["input"]
    assert chat[0]["role"] == "system" and chat[-1]["role"] == "user"
    roles = [m["role"] for m in chat[1:]]
    assert all(a != b for a, b in itertools.pairwise(roles))  # speakers alternate
    text = "\n".join(m["content"] for m in chat[1:])
    assert all(m.content in text for m in label.history)


def test_consecutive_messages_of_one_speaker_are_joined() -> None:
    from services.data.esconv import ESConvMessage

    messages = [
        ESConvMessage("seeker", "Hi."),
        ESConvMessage("seeker", "I feel low."),
        ESConvMessage("supporter", "I'm here."),
    ]
    chat = chat_input(messages, "care")
    assert [m["role"] for m in chat] == ["system", "user", "assistant"]
    assert chat[1]["content"] == "Hi.\nI feel low."


@pytest.mark.parametrize("schema_name", ["compeer", "care"])
def test_the_instruction_teaches_every_step_field_value_and_the_example(schema_name: str) -> None:
    schema = SCHEMAS[schema_name]
    text = system_instruction(schema_name)  # type: ignore[arg-type]
    assert schema.example in text and "<response>" in text
    for step in schema.steps:
        assert f"<{step.name}>" in text
        for f in step.fields:
            assert all(value in text for value in f.values)


def test_group_ids_are_unique_and_rows_deterministic(train: list[dict[str, object]]) -> None:
    rows = list(build_rows(train[:100], "train", group_size=4))
    ids = [read_label(r).group_id for r in rows]
    assert len(ids) == len(set(ids)) and len(rows) > 300
    assert rows == list(build_rows(train[:100], "train", group_size=4))
    assert rows != list(build_rows(train[:100], "train", group_size=4, seed=1))


def test_the_command_writes_the_rows(tmp_path: Path) -> None:
    out = tmp_path / "valid.jsonl"
    args = ["data", "openrlhf-prompts", "--data-dir", str(ESCONV), "--split", "valid", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--group-size", "2", "--schema", "care"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    lines = out.read_text().splitlines()
    assert summary["rows"] == len(lines) > 0 and summary["split"] == "valid"
    label = parse_label(json.loads(lines[0])["label"])
    assert label.group_size == 2 and label.schema_name == "care" and label.group_id.startswith("esconv-valid-")


@pytest.mark.parametrize(("option", "value"), [("--split", "dev"), ("--schema", "other")])
def test_the_command_refuses_unknown_values(tmp_path: Path, option: str, value: str) -> None:
    args = ["data", "openrlhf-prompts", "--data-dir", str(ESCONV), "--out", str(tmp_path / "x.jsonl"), option, value]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and not (tmp_path / "x.jsonl").exists()
