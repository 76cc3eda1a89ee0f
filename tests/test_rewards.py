"""COMPEER's reward rules and the unparseable-judgment policies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.judgments import Preference
from services.core.rewards import PREFERENCE_REWARD, RewardBreakdown, UnparseablePolicy, compeer_reward

FAST = settings(max_examples=200, deadline=None)
ZERO, NEG, POS = UnparseablePolicy.ZERO, UnparseablePolicy.NEGATIVE, UnparseablePolicy.POSITIVE


@pytest.mark.parametrize(
    ("preference", "value"),
    [
        ("first", -1),  # the reference is better
        ("second", 1),  # the candidate's reply is better
        ("equal", 1),  # almost equally good counts as good
        ("neither", -1),  # neither is acceptable
    ],
)
def test_preference_rule(preference: Preference, value: int) -> None:
    assert PREFERENCE_REWARD[preference] == value
    assert compeer_reward([], preference, True).preference == value


@pytest.mark.parametrize(
    ("verdicts", "preference", "complete", "policy", "expected"),
    [
        # unified: steps, preference and format
        ([True, True, True], "second", True, ZERO, RewardBreakdown((1, 1, 1), 1, 1, 0)),  # best case, +5
        ([False, False, False], "first", False, ZERO, RewardBreakdown((-1, -1, -1), -1, -1, 0)),  # worst case, -5
        ([True, False, True], "equal", True, ZERO, RewardBreakdown((1, -1, 1), 1, 1, 0)),  # mixed, +3
        ([True, True, True], "neither", False, ZERO, RewardBreakdown((1, 1, 1), -1, -1, 0)),  # +1
        ([True, True, True, False], "second", True, ZERO, RewardBreakdown((1, 1, 1, -1), 1, 1, 0)),  # CARE's four steps
        # prm: preference not judged (False)
        ([True, True, False], False, True, ZERO, RewardBreakdown((1, 1, -1), None, 1, 0)),  # steps and format only
        ([], False, False, ZERO, RewardBreakdown((), None, -1, 0)),  # nothing written: format only
        # orm: steps not judged (None)
        (None, "second", True, ZERO, RewardBreakdown((), 1, 1, 0)),  # reply and format only
        (None, "first", False, ZERO, RewardBreakdown((), -1, -1, 0)),  # orm worst case
        # unparseable judgments under each policy
        ([None, True, True], "second", True, ZERO, RewardBreakdown((0, 1, 1), 1, 1, 1)),  # zero adds nothing
        ([None, True, True], "second", True, NEG, RewardBreakdown((-1, 1, 1), 1, 1, 1)),  # negative adds -1
        ([None, True, True], "second", True, POS, RewardBreakdown((1, 1, 1), 1, 1, 1)),  # positive adds +1
        ([True, True, True], None, True, ZERO, RewardBreakdown((1, 1, 1), 0, 1, 1)),  # unparsed preference, zero
        ([True, True, True], None, True, NEG, RewardBreakdown((1, 1, 1), -1, 1, 1)),  # unparsed preference, negative
        ([True, True, True], None, True, POS, RewardBreakdown((1, 1, 1), 1, 1, 1)),  # unparsed preference, positive
        ([None, None, None], None, False, NEG, RewardBreakdown((-1, -1, -1), -1, -1, 4)),  # nothing parsed
        (None, None, True, POS, RewardBreakdown((), 1, 1, 1)),  # orm, unparsed preference
        ([None], False, True, NEG, RewardBreakdown((-1,), None, 1, 1)),  # prm, unparsed step
    ],
)
def test_score(
    verdicts: list[bool | None] | None,
    preference: Preference | bool | None,
    complete: bool,
    policy: UnparseablePolicy,
    expected: RewardBreakdown,
) -> None:
    assert compeer_reward(verdicts, preference, complete, policy) == expected


@pytest.mark.parametrize(
    ("breakdown", "reward"),
    [
        (RewardBreakdown((1, 1, 1), 1, 1, 0), 5),  # everything right
        (RewardBreakdown((-1, -1, -1), -1, -1, 0), -5),  # everything wrong
        (RewardBreakdown((1, -1), None, 1, 0), 1),  # no preference counts 0
        (RewardBreakdown((), 1, -1, 0), 0),  # orm
        (RewardBreakdown((0, 0, 0), 0, 1, 4), 1),  # zero policy, nothing parsed
    ],
)
def test_reward_is_the_sum(breakdown: RewardBreakdown, reward: int) -> None:
    assert breakdown.reward == reward


def test_default_policy_is_zero() -> None:
    assert compeer_reward([None], None, True) == RewardBreakdown((0,), 0, 1, 2)


@pytest.mark.parametrize(("name", "policy"), [("zero", ZERO), ("negative", NEG), ("positive", POS)])
def test_policy_from_its_setting_string(name: str, policy: UnparseablePolicy) -> None:
    assert UnparseablePolicy(name) is policy  # settings carry the policy as a string


# --- properties -----------------------------------------------------------------------------------

_VERDICT = st.one_of(st.booleans(), st.none())
_PREFERENCE = st.one_of(st.sampled_from(["first", "second", "equal", "neither"]), st.none(), st.just(False))


@FAST
@given(
    verdicts=st.one_of(st.none(), st.lists(_VERDICT, max_size=6)),
    preference=_PREFERENCE,
    complete=st.booleans(),
    policy=st.sampled_from(list(UnparseablePolicy)),
)
def test_reward_bounds_and_counts(
    verdicts: list[bool | None] | None, preference: Preference | bool | None, complete: bool, policy: UnparseablePolicy
) -> None:
    breakdown = compeer_reward(verdicts, preference, complete, policy)
    n_steps = len(verdicts or [])
    assert -(n_steps + 2) <= breakdown.reward <= n_steps + 2
    assert len(breakdown.steps) == n_steps
    assert all(v in (-1, 0, 1) for v in breakdown.steps)
    assert breakdown.format == (1 if complete else -1)
    assert (breakdown.preference is None) is (preference is False)
    assert breakdown.unparsed == sum(v is None for v in verdicts or []) + (preference is None)
    assert breakdown.reward == sum(breakdown.steps) + (breakdown.preference or 0) + breakdown.format


@FAST
@given(verdicts=st.lists(st.booleans(), max_size=6), preference=_PREFERENCE, complete=st.booleans())
def test_policy_does_not_matter_when_everything_parses(
    verdicts: list[bool], preference: Preference | bool | None, complete: bool
) -> None:
    if preference is None:
        preference = False
    rewards = {p: compeer_reward(list(verdicts), preference, complete, p) for p in UnparseablePolicy}
    assert len(set(rewards.values())) == 1
    assert rewards[ZERO].unparsed == 0


P = {"first": 0.1, "second": 0.2, "equal": 0.6, "neither": 0.1}  # expectation 0.2 + 0.6 - 0.1 - 0.1 = 0.6


@pytest.mark.parametrize(
    ("verdicts", "p_correct", "preference", "probabilities", "expected"),
    [
        # every judgment with its probability: each +1/-1 becomes its expectation
        ([True, True, False], [0.9, 0.6, 0.25], "equal", P, RewardBreakdown((0.8, 0.2, -0.5), 0.6, 1, 0, 0)),
        (
            [True],
            [0.5],
            "second",
            {"first": 0, "second": 1, "equal": 0, "neither": 0},
            RewardBreakdown((0,), 1, 1, 0, 0),
        ),
        (
            [False],
            [0.0],
            "neither",
            {"first": 0, "second": 0, "equal": 0, "neither": 1},
            RewardBreakdown((-1,), -1, 1, 0, 0),
        ),
        # the expectation follows the probability, not the verdict read beside it
        ([False], [0.7], "first", P, RewardBreakdown((0.4,), 0.6, 1, 0, 0)),
        # no probability (a rule decided, or the judge gives none): the discrete value, counted
        ([True, False], [None, None], "second", None, RewardBreakdown((1, -1), 1, 1, 0, 3)),
        ([True, False], [0.8], "second", P, RewardBreakdown((0.6, -1), 0.6, 1, 0, 1)),  # fewer p than steps
        # an unreadable judgment counts by the policy, as in discrete scoring, whatever its probability
        ([None, True], [0.9, 0.9], None, P, RewardBreakdown((0, 0.8), 0, 1, 2, 0)),
        # prm and orm
        ([True], [0.75], False, None, RewardBreakdown((0.5,), None, 1, 0, 0)),
        (None, None, "equal", P, RewardBreakdown((), 0.6, 1, 0, 0)),
    ],
)
def test_expected_scoring(
    verdicts: list[bool | None] | None,
    p_correct: list[float | None] | None,
    preference: Preference | bool | None,
    probabilities: dict[Preference, float] | None,
    expected: RewardBreakdown,
) -> None:
    got = compeer_reward(
        verdicts, preference, True, scoring="expected", p_correct=p_correct, preference_probabilities=probabilities
    )
    assert got.steps == pytest.approx(expected.steps) and got.preference == pytest.approx(expected.preference)
    assert (got.format, got.unparsed, got.without_probability) == (
        expected.format,
        expected.unparsed,
        expected.without_probability,
    )
    assert got.reward == pytest.approx(expected.reward)
    # discrete scoring ignores the probabilities and counts nothing as without one
    discrete = compeer_reward(verdicts, preference, True, p_correct=p_correct, preference_probabilities=probabilities)
    assert discrete == compeer_reward(verdicts, preference, True) and discrete.without_probability == 0


@FAST
@given(
    p=st.lists(st.floats(0, 1), min_size=1, max_size=4),
    probabilities=st.lists(st.floats(0, 1), min_size=4, max_size=4).filter(lambda ps: sum(ps) > 0),
)
def test_expected_rewards_stay_within_the_discrete_range(p: list[float], probabilities: list[float]) -> None:
    total = sum(probabilities)
    dist: dict[Preference, float] = dict(
        zip(("first", "second", "equal", "neither"), (x / total for x in probabilities), strict=True)
    )
    got = compeer_reward(
        [True] * len(p), "second", True, scoring="expected", p_correct=p, preference_probabilities=dist
    )
    assert all(-1 - 1e-9 <= s <= 1 + 1e-9 for s in got.steps) and -1 - 1e-9 <= (got.preference or 0) <= 1 + 1e-9
    assert -(len(p) + 2) - 1e-9 <= got.reward <= len(p) + 2 + 1e-9
