"""The ``unifireward`` command, end to end on a few ESConv dialogues and the fake judge."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from unifireward.cli import app

ESCONV = Path(__file__).resolve().parents[2] / "shared" / "data" / "esconv"
runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "data", "train-judge", "eval-judge"):
        assert command in result.output


def test_derive_then_evaluate(tmp_path: Path) -> None:
    source = tmp_path / "esconv"
    source.mkdir()
    for split in ("train", "valid", "test"):  # three dialogues per split keep it fast
        lines = (ESCONV / f"esconv_{split}.jsonl").read_text().splitlines()[:3]
        (source / f"esconv_{split}.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "cer"
    derived = runner.invoke(app, ["data", "esconv-cer", "--data-dir", str(source), "--out", str(out)])
    assert derived.exit_code == 0, derived.output
    counts = json.loads(derived.output)
    assert counts["test"]["items"] == len((out / "test.jsonl").read_text().splitlines()) > 0

    evaluated = runner.invoke(app, ["eval-judge", "--data", str(out / "test.jsonl"), "--backend", "fake"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.output)
    assert report["items"] == counts["test"]["items"]
    assert set(report["steps"]) == {"history_analysis", "emotional_state", "support_strategy"}
    assert report["failures"] == {"parse_error": 0, "backend_error": 0}
    # the fake judge accepts every step: False recall is 0 and the preference always "equal"
    assert all(m["false_recall"] == 0.0 for m in report["steps"].values())
    assert report["preference"]["accuracy"] < 1.0


def test_eval_judge_refuses_an_unknown_backend(tmp_path: Path) -> None:
    data = tmp_path / "items.jsonl"
    data.write_text("")
    result = runner.invoke(app, ["eval-judge", "--data", str(data), "--backend", "gpt"])
    assert result.exit_code == 2  # a usage error, not a traceback
    assert "unknown backend 'gpt'" in result.output


def test_train_judge_refuses_the_other_kinds_options() -> None:
    """An option of the other kind of judge is refused by name, never ignored (nothing trains)."""
    generative = runner.invoke(
        app, ["train-judge", "--kind", "generative", "--blind", "--hack-points", "2", "--dry-run"]
    )
    assert generative.exit_code == 2
    assert "not options of the generative judge: --blind, --hack-points" in _plain(generative.output)
    classifier = runner.invoke(app, ["train-judge", "--learning-rate", "1e-3"])
    assert classifier.exit_code == 2
    assert "not options of the classifier judge: --learning-rate" in _plain(classifier.output)


def _plain(output: str) -> str:
    """A command's output without the error panel's borders and line breaks."""
    return " ".join(output.replace("│", " ").split())
