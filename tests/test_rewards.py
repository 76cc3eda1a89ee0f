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
