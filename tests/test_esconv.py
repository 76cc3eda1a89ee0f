"""ESConv rounds and COMPEER's Gaussian sparse sampling."""

from __future__ import annotations

import random

import pytest

from services.data.esconv import ESConvMessage, dialogue_messages, extract_rounds, gaussian_sparse_sample


@pytest.mark.parametrize(
    ("n_rounds", "n_samples"),
    [
        (10, 4),  # the usual case
        (4, 4),  # Ns == Nr: every round
        (3, 7),  # Ns > Nr: capped
        (1, 1),  # a single round
        (40, 39),  # Ns close to Nr: duplicates must be redrawn many times
        (120, 4),  # a long dialogue
    ],
)
@pytest.mark.parametrize("seed", range(20))
def test_sample_unique_sorted_in_range(n_rounds: int, n_samples: int, seed: int) -> None:
    drawn = gaussian_sparse_sample(n_rounds, n_samples, random.Random(seed))
    assert len(drawn) == min(n_rounds, n_samples)
    assert drawn == sorted(set(drawn))
    assert all(0 <= i < n_rounds for i in drawn)


@pytest.mark.parametrize(
    ("n_rounds", "n_samples", "expected"),
    [
        (0, 4, []),  # no rounds
        (5, 0, []),  # nothing asked
        (3, 5, [0, 1, 2]),  # capped at Nr
    ],
)
def test_sample_edge_cases(n_rounds: int, n_samples: int, expected: list[int]) -> None:
    assert gaussian_sparse_sample(n_rounds, n_samples, random.Random(0)) == expected


def test_sample_is_centred_and_seeded() -> None:
    draws = [i for s in range(500) for i in gaussian_sparse_sample(40, 1, random.Random(s))]
    mean = sum(draws) / len(draws)
    assert mean == pytest.approx(20, abs=1.5)  # mu = Nr / 2
    spread = (sum((d - mean) ** 2 for d in draws) / len(draws)) ** 0.5
    assert spread == pytest.approx(10, abs=1.5)  # sigma = Nr / 4
    assert gaussian_sparse_sample(30, 4, random.Random(7)) == gaussian_sparse_sample(30, 4, random.Random(7))


def _m(role: str, text: str, strategy: str | None = None) -> ESConvMessage:
    return ESConvMessage(role, text, strategy)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        # supporter greeting before the seeker speaks is not a round
        ([_m("supporter", "Hi", "Others"), _m("seeker", "Hey")], []),
        # one block of two supporter messages: joined reply, first message's strategy
        (
            [
                _m("seeker", "Sad"),
                _m("supporter", "Sorry.", "Reflection of feelings"),
                _m("supporter", "Why?", "Question"),
            ],
            [(0, 1, 3, "Sorry. Why?", "Reflection of feelings")],
        ),
        # two rounds separated by seeker messages (consecutive seeker messages are fine)
        (
            [
                _m("seeker", "a"),
                _m("seeker", "b"),
                _m("supporter", "c", "Question"),
                _m("seeker", "d"),
                _m("supporter", "e", "Information"),
            ],
            [(0, 2, 3, "c", "Question"), (1, 4, 5, "e", "Information")],
        ),
        # dialogue ending with the seeker
        ([_m("seeker", "a"), _m("supporter", "b", "Others"), _m("seeker", "c")], [(0, 1, 2, "b", "Others")]),
        ([], []),  # empty dialogue
    ],
)
def test_extract_rounds(messages: list[ESConvMessage], expected: list[tuple[int, int, int, str, str]]) -> None:
    got = [(r.index, r.start, r.end, r.reply, r.strategy) for r in extract_rounds(messages)]
    assert got == expected


def test_dialogue_messages_maps_roles() -> None:
    d = {"dialog": [{"text": " hi ", "speaker": "usr"}, {"text": "hello", "speaker": "sys", "strategy": "Others"}]}
    assert dialogue_messages(d) == [ESConvMessage("seeker", "hi"), ESConvMessage("supporter", "hello", "Others")]
