"""The derived CER judge items: labels follow corruptions, derivation is deterministic, phrasing varies."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from services.core.candidate import parse_candidate
from services.core.schemas import SCHEMAS, STAGES, STRATEGIES
from services.data.cer_data import CORRUPTIONS, MAIN_EMOTIONS, derive_split, gold_stage
from services.data.esconv import Round, load_split

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "esconv" / "esconv_valid.jsonl"
SCHEMA = SCHEMAS["compeer"]
STEPS = [s.name for s in SCHEMA.steps]


@pytest.fixture(scope="module")
def dialogues() -> list[dict[str, Any]]:
    if not DATA.exists():
        pytest.skip("ESConv is not available at ../shared/data/esconv")
    return load_split(DATA)[:25]


@pytest.fixture(scope="module")
def items(dialogues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return derive_split(dialogues, "valid", rounds_per_dialogue=4, seed=0)


def _fields(record: dict[str, Any]) -> tuple[dict[str, str], str | None]:
    parsed = parse_candidate(record["candidate"], SCHEMA)
    assert parsed.complete, parsed.missing
    values = {k: v for step in parsed.steps.values() for k, v in step.fields.items()}
    return values, parsed.response


def _round_items(items: list[dict[str, Any]]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    groups: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for r in items:
        groups.setdefault((r["dialogue_index"], r["round_index"]), []).append(r)
    return groups


def test_every_candidate_parses_and_gold_is_complete(items: list[dict[str, Any]]) -> None:
    assert {r["corruption"] for r in items} == set(CORRUPTIONS)
    for record in items:
        _fields(record)  # asserts completeness


EXPECTED_STEPS = {
    "gold": (True, True, True),
    "stage": (False, True, True),
    "emotion": (True, False, True),
    "strategy": (True, True, False),
    "other_dialogue": (True, True, True),
    "contradicting_strategy": (True, True, True),
    "filler": (True, True, True),
    "bad_reference": (True, True, True),
    "both_bad": (True, True, True),
}


def test_labels_match_corruptions(items: list[dict[str, Any]], dialogues: list[dict[str, Any]]) -> None:
    for group in _round_items(items).values():
        gold = next(r for r in group if r["corruption"] == "gold")
        gold_values, gold_reply = _fields(gold)
        assert gold["reference"] == gold_reply and gold["labels"]["preference"] == "equal"
        assert gold_values["emotion"] == dialogues[gold["dialogue_index"]]["emotion_type"]
        for r in group:
            values, reply = _fields(r)
            assert tuple(r["labels"]["steps"][s] for s in STEPS) == EXPECTED_STEPS[r["corruption"]]
            for name, wrong in (("stage", "stage"), ("emotion", "emotion"), ("strategy", "strategy")):
                assert (values[name] != gold_values[name]) == (r["corruption"] == wrong), (r["id"], name)
            assert r["history"] == gold["history"]
            same = reply == r["reference"]
            pref = r["labels"]["preference"]
            if r["reference_source"] == "gold":
                assert r["reference"] == gold_reply
                assert pref == ("equal" if reply == gold_reply else "first")
            else:
                assert r["reference"] != gold_reply
                assert pref == ("second" if reply == gold_reply else "neither" if same else "first")
            if r["corruption"] == "contradicting_strategy":
                assert reply != gold_reply and r["reply_source"] == "same_dialogue"
            if r["corruption"] == "emotion":
                assert values["emotion"] in MAIN_EMOTIONS


def test_reference_identity_is_no_shortcut(items: list[dict[str, Any]]) -> None:
    """Equal vs neither (reply == reference) and first vs second (reply != reference) are balanced."""
    counts: Counter[tuple[bool, str]] = Counter()
    for r in items:
        counts[(_fields(r)[1] == r["reference"], r["labels"]["preference"])] += 1
    assert counts[(True, "equal")] == pytest.approx(counts[(True, "neither")], rel=0.25)
    assert counts[(False, "first")] == pytest.approx(counts[(False, "second")], rel=0.1)
    assert counts[(True, "first")] == counts[(False, "equal")] == counts[(True, "second")] == 0


def test_deterministic_and_seeded(dialogues: list[dict[str, Any]], items: list[dict[str, Any]]) -> None:
    assert derive_split(dialogues, "valid", 4, 0) == items
    other = derive_split(dialogues, "valid", 4, 1)
    assert [r["candidate"] for r in other] != [r["candidate"] for r in items]


def test_phrasing_varies(items: list[dict[str, Any]]) -> None:
    texts: dict[str, set[str]] = {s: set() for s in STEPS}
    for r in items:
        parsed = parse_candidate(r["candidate"], SCHEMA)
        for name, step in parsed.steps.items():
            # the sentence pattern, with the dialogue-specific words (problem, emotion) cut out
            texts[name].add(step.text.split(" ")[0] + " " + step.text.split(" ")[-1])
    for name, seen in texts.items():
        assert len(seen) >= 5, name


def test_rounds_per_dialogue(dialogues: list[dict[str, Any]]) -> None:
    one = derive_split(dialogues[:5], "valid", rounds_per_dialogue=1, seed=0)
    assert len({(r["dialogue_index"], r["round_index"]) for r in one}) == 5


def _rounds(strategies: list[str]) -> list[Round]:
    return [Round(i, 2 * i + 1, 2 * i + 2, "x", s, (s,)) for i, s in enumerate(strategies)]


@pytest.mark.parametrize(
    ("strategies", "index", "n_messages", "expected"),
    [
        (["Question"], 0, 10, "exploration"),  # one vote
        (["Question", "Question", "Providing Suggestions"], 2, 10, "exploration"),  # majority of 3
        (["Question", "Providing Suggestions"], 1, 10, "action"),  # tie goes to the later stage
        (["Question", "Question", "Question", "Self-disclosure"], 3, 10, "exploration"),  # window of 3 rounds
        (["Question", "Others", "Others", "Others"], 3, 10, "action"),  # no vote: 4th round, 7th of 10 msgs
        (["Others"], 0, 30, "exploration"),  # no vote, early in the dialogue
    ],
)
def test_gold_stage(strategies: list[str], index: int, n_messages: int, expected: str) -> None:
    assert gold_stage(_rounds(strategies), index, n_messages) == expected
    assert expected in STAGES and all(s in STRATEGIES for s in strategies)


def test_every_kind_of_worse_reply_is_mirrored_as_a_worse_reference(items: list[dict[str, Any]]) -> None:
    """Without the dialogue, the kind of text (filler, another round, another dialogue) gives nothing away."""
    worse_replies: Counter[str] = Counter()
    worse_references: Counter[str] = Counter()
    for r in items:
        if r["reference_source"] == "gold" and r["reply_source"] != "gold":
            worse_replies[r["reply_source"]] += 1
        if r["reply_source"] == "gold" and r["reference_source"] != "gold":
            worse_references[r["reference_source"]] += 1
    assert set(worse_replies) == {"other_dialogue", "same_dialogue", "filler"}
    for kind, count in worse_replies.items():
        assert worse_references[kind] == pytest.approx(count, rel=0.15), kind


def test_wrong_values_are_drawn_as_often_as_they_are_right(items: list[dict[str, Any]]) -> None:
    """A stated value alone does not say whether the step is wrong (rare values are not mostly wrong)."""
    for name in ("emotion", "strategy"):
        corruption = name
        right: Counter[str] = Counter()
        wrong: Counter[str] = Counter()
        for r in items:
            value = _fields(r)[0][name]
            if r["corruption"] == corruption:
                wrong[value] += 1
            elif r["corruption"] == "gold":
                right[value] += 1
        n_right, n_wrong = sum(right.values()), sum(wrong.values())
        for value, count in right.most_common(3):  # frequent right values are frequent wrong values too
            assert wrong[value] / n_wrong == pytest.approx(count / n_right, abs=0.12), (name, value)
        for value, count in wrong.items():  # no value is wrong far more often than it is right
            assert count / n_wrong <= 3 * right[value] / n_right + 0.03, (name, value)
