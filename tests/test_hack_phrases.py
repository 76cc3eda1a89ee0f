"""The written replies of the reward-hacking suite: split hygiene, counts, lengths, content and lookups.

Split hygiene is checked on the templates, lowercased with punctuation stripped: no wording and no word
4-gram is found in two splits, kind by kind and over all kinds together. A 4-gram made only of
placeholders and English function words (``STOP_WORDS``, e.g. "it is not that") is ignored: it is the
language itself, not a family's phrasing.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.schemas import EMOTIONS, STRATEGIES
from services.data import hack_phrases as hp

FAST = settings(max_examples=200, deadline=None)
GOOD_KINDS = tuple(f"good:{s}" for s in STRATEGIES)
ALL_KINDS = hp.WRITTEN_KINDS + GOOD_KINDS
#: ESConv's ``problem_type`` values, spelled as in the data.
ESCONV_PROBLEMS = (
    "ongoing depression",
    "job crisis",
    "breakup with partner",
    "problems with friends",
    "academic pressure",
    "Sleep Problems",
    "conflict with parents",
    "Issues with Children",
    "Appearance Anxiety",
    "Alcohol Abuse",
    "Procrastination",
    "Issues with Parents",
    "School Bullying",
)
#: (families per split at least, wordings per family from, to, words after filling from, to) per kind.
SHAPES: dict[str, tuple[int, int, int, int, int]] = {
    "good": (3, 2, 4, 10, 45),  # 1-3 sentences a real supporter could write
    "dismissive": (6, 3, 5, 3, 40),  # short brush-offs
    "hostile": (6, 3, 5, 3, 40),  # short insults
    "advice_dump": (6, 3, 5, 40, 120),  # a list of 4-8 orders
    "off_topic": (6, 3, 5, 80, 300),  # a ramble
    "other_language": (6, 3, 5, 10, 40),  # a supportive reply in another language
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS = _words(
    """a about after again all also am an and any are as at be because been before being but by can could did do
    does doing don't for from had has have having he her here his how i i'd i'll i'm i've if in into is it it's
    its just me more most my no not now of off on once only or other our out over own so some such than that
    that's the their them then there there's these they this those through to too up very was we were what when
    where which while who why will with would you you'd you'll you're you've your yours yourself"""
)
PLACEHOLDERS = frozenset({"{feeling}", "{problem}"})
_TOKEN = re.compile(r"\{\w+\}|[^\W_]+(?:'[^\W_]+)*")


def _shape(kind: str) -> tuple[int, int, int, int, int]:
    return SHAPES["good" if kind.startswith("good:") else kind]


def _wordings(kind: str, split: str) -> list[str]:
    return [w for family in hp.families(kind, split) for w in family]


def _grams(text: str) -> set[tuple[str, ...]]:
    """The word 4-grams of a text, except those made only of placeholders and function words."""
    words = _TOKEN.findall(text.lower().replace("\u2019", "'"))
    grams = {tuple(words[i : i + 4]) for i in range(len(words) - 3)}
    return {g for g in grams if not set(g) <= STOP_WORDS | PLACEHOLDERS}


def _shared_grams(texts: Mapping[str, Sequence[str]]) -> dict[tuple[str, ...], list[str]]:
    """4-grams found in more than one split, with those splits."""
    splits: dict[tuple[str, ...], set[str]] = {}
    for split, split_texts in texts.items():
        for text in split_texts:
            for gram in _grams(text):
                splits.setdefault(gram, set()).add(split)
    return {g: sorted(s) for g, s in splits.items() if len(s) > 1}


def _fills(template: str) -> Iterator[str]:
    """The template filled with every feeling and problem phrase it can meet, fallbacks included."""
    feelings = {f for values in hp.FEELINGS.values() for f in values} | set(hp.GENERIC_FEELINGS)
    problems = {p for values in hp.PROBLEMS.values() for p in values} | set(hp.GENERIC_PROBLEMS)
    for feeling in sorted(feelings) if "{feeling}" in template else ["-"]:
        for problem in sorted(problems) if "{problem}" in template else ["-"]:
            yield hp.fill(template, feeling=feeling, problem=problem)


# --- names and tables ---------------------------------------------------------------------------------


def test_names_match_the_schema_and_esconv() -> None:
    assert hp.STRATEGIES == STRATEGIES
    assert set(hp.FEELINGS) == set(EMOTIONS)
    assert set(hp.PROBLEMS) == set(ESCONV_PROBLEMS)
    assert hp.SPLITS == ("train", "valid", "test")
    assert hp.WRITTEN_KINDS == ("dismissive", "hostile", "advice_dump", "off_topic", "other_language")


def test_lookup_tables_hold_a_few_short_phrases() -> None:
    for table in (hp.FEELINGS, hp.PROBLEMS):
        for key, values in table.items():
            assert 2 <= len(values) <= 5 and len(set(values)) == len(values), key
            assert all(v and v == v.strip() and v[0].islower() for v in values), key
    assert all(len(f.split()) <= 2 for values in hp.FEELINGS.values() for f in values)
    problems = [p for values in (*hp.PROBLEMS.values(), hp.GENERIC_PROBLEMS) for p in values]
    # second person, so "{problem}" reads right in a reply to the seeker
    assert not [p for p in problems if re.search(r"\b(i|me|my|they|them|their|he|she|his|her)\b", p)]
    assert sum(bool(re.search(r"\b(you|your)\b", p)) for p in problems) > len(problems) / 2


# --- counts and split hygiene -------------------------------------------------------------------------


@pytest.mark.parametrize("split", hp.SPLITS)
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_counts_per_split(kind: str, split: str) -> None:
    min_families, min_wordings, max_wordings, _, _ = _shape(kind)
    families = hp.families(kind, split)
    assert len(families) >= min_families
    assert all(min_wordings <= len(family) <= max_wordings for family in families)
    wordings = _wordings(kind, split)
    assert len(set(wordings)) == len(wordings)  # no wording twice in a split


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_splits_share_no_wording(kind: str) -> None:
    train, valid, test = (set(_wordings(kind, split)) for split in hp.SPLITS)
    assert not (train & valid or train & test or valid & test)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_splits_share_no_4gram_within_a_kind(kind: str) -> None:
    assert _shared_grams({split: _wordings(kind, split) for split in hp.SPLITS}) == {}


def test_splits_share_no_4gram_across_kinds() -> None:
    texts = {split: [w for kind in ALL_KINDS for w in _wordings(kind, split)] for split in hp.SPLITS}
    assert _shared_grams(texts) == {}


@pytest.mark.parametrize(
    ("texts", "shared"),
    [
        # a distinctive phrase in two splits is caught, case and punctuation aside
        ({"train": ["It's not a big deal."], "test": ["Really, NOT a big deal!"]}, {("not", "a", "big", "deal")}),
        # function words and placeholders alone are not a phrase
        ({"train": ["It is not that {problem} hurts"], "test": ["it is not that bad"]}, set()),
        # within a split, sharing is the point of a family
        ({"train": ["take your time, please", "take your time, okay"], "test": []}, set()),
    ],
)
def test_the_4gram_check_finds_shared_phrases(texts: dict[str, list[str]], shared: set[tuple[str, ...]]) -> None:
    assert set(_shared_grams(texts)) == shared


# --- templates and lengths ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_templates_use_only_the_two_placeholders(kind: str) -> None:
    for split in hp.SPLITS:
        for template in _wordings(kind, split):
            assert set(re.findall(r"\{[^{}]*\}", template)) <= PLACEHOLDERS, template
            assert "{" not in _TOKEN.sub("", template) and "}" not in _TOKEN.sub("", template), template


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_fill_has_the_right_length_and_no_leftover(kind: str) -> None:
    _, _, _, min_words, max_words = _shape(kind)
    for split in hp.SPLITS:
        for template in _wordings(kind, split):
            for text in _fills(template):
                assert min_words <= len(text.split()) <= max_words, text
                assert "{" not in text and "}" not in text, text
                assert not re.search(r"(?:^|[.!?]\s+)[a-z]", text), text  # every sentence starts with a capital


def test_good_replies_speak_to_the_dialogue() -> None:
    for kind in GOOD_KINDS:
        for split in hp.SPLITS:
            used = [t for t in _wordings(kind, split) if "{feeling}" in t or "{problem}" in t]
            # most good replies are written for the seeker's feeling or problem
            assert len(used) >= len(_wordings(kind, split)) // 2 or kind == "good:Others", (kind, split)


def test_question_replies_ask_a_question() -> None:
    for split in hp.SPLITS:
        assert all("?" in t for t in _wordings("good:Question", split))


#: Words that open an order in the advice dumps ("never" and "don't" open a prohibition).
IMPERATIVES = _words(
    """adopt apply avoid be blast book buy call cancel chew clean clear cook cut declutter delete do don't download
    drink eat enroll exercise follow get give go hire hydrate journal join keep learn leave limit list listen
    make meditate move never obey open pick plan play put quit read rearrange reorganize repaint repeat review
    ride ring run schedule set sign skip sleep smile spend start steer stick stop stretch switch take tick tidy
    track train trust try turn unfollow unsubscribe use visualize volunteer wake walk write"""
)
_LEAD = re.compile(r"^(?:[-*•]|\(?[a-z0-9]{1,2}[.)])\s*|^(?:and|then|also|just|so|next|finally|first)\b\s*")
_CLAUSE = re.compile(r"[.;:!?,\n]")


def _orders(text: str) -> int:
    """Clauses of an advice dump that open with an imperative verb, after list markers and linking words."""
    count = 0
    for clause in _CLAUSE.split(text.lower()):
        clause = clause.strip()
        while (stripped := _LEAD.sub("", clause, count=1).strip()) != clause:
            clause = stripped
        count += clause.split(" ", 1)[0] in IMPERATIVES
    return count


@pytest.mark.parametrize(
    ("text", "orders"),
    [
        ("Here is the plan: 1. Wake up early. 2) Drink water. - Go out.", 3),  # numbered and bulleted items
        ("First, stop it. Then call her, and sign up.", 3),  # linking words before the verb
        ("You should rest. It helps. Rest is good.", 0),  # advice, but no orders
    ],
)
def test_order_counting(text: str, orders: int) -> None:
    assert _orders(text) == orders


def test_advice_dumps_are_lists_of_orders() -> None:
    for split in hp.SPLITS:
        for template in _wordings("advice_dump", split):
            assert 4 <= _orders(template) <= 10, template  # 4-8 suggestions, and maybe an order to obey them


ENGLISH = _words("the you your and that this with are feel for what to i'm it's")


def test_other_language_replies_have_no_english_and_no_placeholder() -> None:
    for split in hp.SPLITS:
        for text in _wordings("other_language", split):
            assert not set(_TOKEN.findall(text.lower())) & ENGLISH, text
            assert "{" not in text, text


def test_other_languages_differ_between_splits() -> None:
    words = {
        split: {w for t in _wordings("other_language", split) for w in _TOKEN.findall(t.lower())} for split in hp.SPLITS
    }
    # the splits' function words tell their languages apart: no split reuses another's
    for marker in ("estoy", "suis", "ich", "ik", "você", "sono"):
        assert sum(marker in words[split] for split in hp.SPLITS) == 1, marker


def test_off_topic_replies_ignore_the_seeker() -> None:
    for split in hp.SPLITS:
        for text in _wordings("off_topic", split):
            assert "{" not in text, text
            assert not re.search(r"\b(sorry|feel(ing)?s?|problem)\b", text.lower()), text


# --- lookups, fill and drawing ------------------------------------------------------------------------

ALL_FEELINGS = {f for values in hp.FEELINGS.values() for f in values}
ALL_PROBLEMS = {p for values in hp.PROBLEMS.values() for p in values}


@pytest.mark.parametrize(
    ("emotion_type", "expected"),
    [
        ("anxiety", hp.FEELINGS["anxiety"]),  # as ESConv writes it
        ("  PAIN ", hp.FEELINGS["pain"]),  # any case and spacing
        ("boredom", hp.GENERIC_FEELINGS),  # unknown: the fallback
        ("", hp.GENERIC_FEELINGS),
    ],
)
def test_feeling_lookup(emotion_type: str, expected: tuple[str, ...]) -> None:
    assert {hp.feeling(emotion_type, random.Random(seed)) for seed in range(50)} == set(expected)


@pytest.mark.parametrize(
    ("problem_type", "expected"),
    [
        ("Sleep Problems", hp.PROBLEMS["Sleep Problems"]),  # as ESConv writes it
        ("sleep  problems", hp.PROBLEMS["Sleep Problems"]),  # any case and spacing
        ("JOB CRISIS", hp.PROBLEMS["job crisis"]),
        ("tax audit", hp.GENERIC_PROBLEMS),  # unknown: the fallback
    ],
)
def test_problem_lookup(problem_type: str, expected: tuple[str, ...]) -> None:
    assert {hp.problem(problem_type, random.Random(seed)) for seed in range(50)} == set(expected)


@FAST
@given(text=st.text(), seed=st.integers())
def test_lookups_accept_any_string(text: str, seed: int) -> None:
    assert hp.feeling(text, random.Random(seed)) in ALL_FEELINGS | set(hp.GENERIC_FEELINGS)
    assert hp.problem(text, random.Random(seed)) in ALL_PROBLEMS | set(hp.GENERIC_PROBLEMS)


@FAST
@given(
    key=st.sampled_from(ESCONV_PROBLEMS),
    emotion=st.sampled_from(EMOTIONS),
    case=st.sampled_from([str.upper, str.lower, str.title, str.swapcase]),
    seed=st.integers(),
)
def test_lookups_ignore_case(key: str, emotion: str, case: Callable[[str], str], seed: int) -> None:
    assert hp.problem(case(key), random.Random(seed)) in hp.PROBLEMS[key]
    assert hp.feeling(case(emotion), random.Random(seed)) in hp.FEELINGS[emotion]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{problem} hurts.", "Losing your job hurts."),  # a sentence's start is capitalised
        ("It hurts. {problem} hurts!", "It hurts. Losing your job hurts!"),
        ("Why? {feeling}, I guess.", "Why? On edge, I guess."),
        ("About {problem}, you feel {feeling}.", "About losing your job, you feel on edge."),  # mid-sentence
        ("{Problem} and {other} stay.", "{Problem} and {other} stay."),  # unknown braces are left
        ("No placeholder here.", "No placeholder here."),
    ],
)
def test_fill(template: str, expected: str) -> None:
    assert hp.fill(template, feeling="on edge", problem="losing your job") == expected


def test_fill_inserts_values_verbatim() -> None:
    assert hp.fill("{feeling} / {problem}", feeling="{problem}", problem="x") == "{problem} / x"


@FAST
@given(text=st.text().filter(lambda t: "{" not in t), feeling=st.text(), problem=st.text())
def test_fill_leaves_texts_without_placeholders(text: str, feeling: str, problem: str) -> None:
    assert hp.fill(text, feeling=feeling, problem=problem) == text


def _possible(kind: str, split: str, emotion: str, problem: str) -> set[str]:
    return {
        hp.fill(t, feeling=f, problem=p)
        for t in _wordings(kind, split)
        for f in hp.FEELINGS[emotion]
        for p in hp.PROBLEMS[problem]
    }


@FAST
@given(
    kind=st.sampled_from(ALL_KINDS),
    split=st.sampled_from(hp.SPLITS),
    emotion=st.sampled_from(EMOTIONS),
    problem=st.sampled_from(ESCONV_PROBLEMS),
    seed=st.integers(),
)
def test_replies_come_from_their_split_and_are_deterministic(
    kind: str, split: str, emotion: str, problem: str, seed: int
) -> None:
    if kind.startswith("good:"):
        reply = hp.good_reply(kind.removeprefix("good:"), emotion, problem, split, random.Random(seed))
        again = hp.good_reply(kind.removeprefix("good:"), emotion, problem, split, random.Random(seed))
    else:
        reply = hp.written_hack(kind, emotion, problem, split, random.Random(seed))
        again = hp.written_hack(kind, emotion, problem, split, random.Random(seed))
    assert reply == again
    assert reply in _possible(kind, split, emotion, problem)
    assert all(reply not in _possible(kind, other, emotion, problem) for other in hp.SPLITS if other != split)


def test_drawing_reaches_every_family() -> None:
    rng = random.Random(0)
    replies = {hp.written_hack("hostile", "anger", "job crisis", "valid", rng) for _ in range(500)}
    for family in hp.families("hostile", "valid"):
        fills = {
            hp.fill(w, feeling=f, problem=p)
            for w in family
            for f in hp.FEELINGS["anger"]
            for p in hp.PROBLEMS["job crisis"]
        }
        assert len(replies & fills) == len(fills), family  # every wording of every family is drawn


def test_strategy_names_ignore_case() -> None:
    assert hp.families("good:reflection OF feelings", "test") == hp.families("good:Reflection of feelings", "test")


@pytest.mark.parametrize(
    "call",
    [
        lambda: hp.families("flattery", "train"),  # unknown kind
        lambda: hp.families("dismissive", "dev"),  # unknown split
        lambda: hp.families("good:Flattery", "train"),  # unknown strategy
        lambda: hp.families("good:", "train"),
        lambda: hp.good_reply("Flattery", "anxiety", "job crisis", "train", random.Random(0)),
        lambda: hp.good_reply("Question", "anxiety", "job crisis", "Train", random.Random(0)),
        lambda: hp.written_hack("good:Question", "anxiety", "job crisis", "train", random.Random(0)),  # not written
        lambda: hp.written_hack("filler", "anxiety", "job crisis", "test", random.Random(0)),
    ],
)
def test_unknown_names_raise(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()
