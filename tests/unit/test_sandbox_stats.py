"""The statistics of scorecards and comparisons: known values and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deputy.sandbox.stats import (
    bootstrap_interval,
    paired_bootstrap_delta,
    pass_hat_k,
    quantile,
    sign_test_p,
    wilson,
)

trials = st.integers(min_value=1, max_value=30)
rates = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=25)


# -- pass^k --------------------------------------------------------------------------------


def test_pass_hat_k_known_values() -> None:
    assert pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)
    assert pass_hat_k(4, 2, 1) == 0.5
    assert pass_hat_k(4, 4, 4) == 1.0
    assert pass_hat_k(4, 3, 4) == 0.0
    assert pass_hat_k(8, 6, 3) == pytest.approx(20 / 56)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 1, 0), (3, 1, 4), (3, 4, 1), (3, -1, 1)])
def test_pass_hat_k_rejects_impossible_arguments(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="must be within"):
        pass_hat_k(n, c, k)


@given(st.data(), trials)
def test_pass_hat_k_is_a_probability_that_falls_with_k_and_rises_with_successes(
    data: st.DataObject, n: int
) -> None:
    c = data.draw(st.integers(min_value=0, max_value=n))
    values = [pass_hat_k(n, c, k) for k in range(1, n + 1)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values == sorted(values, reverse=True)
    assert values[0] == pytest.approx(c / n)
    if c < n:
        assert all(pass_hat_k(n, c, k) <= pass_hat_k(n, c + 1, k) for k in range(1, n + 1))


# -- Wilson --------------------------------------------------------------------------------


def test_wilson_known_value_and_edges() -> None:
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="successes must be within"):
        wilson(3, 2)


@given(st.data(), trials)
def test_wilson_contains_the_rate_and_is_symmetric(data: st.DataObject, n: int) -> None:
    s = data.draw(st.integers(min_value=0, max_value=n))
    low, high = wilson(s, n)
    assert 0.0 <= low <= s / n + 1e-12 and s / n - 1e-12 <= high <= 1.0
    mirror_low, mirror_high = wilson(n - s, n)
    assert low == pytest.approx(1.0 - mirror_high) and high == pytest.approx(1.0 - mirror_low)
    narrower = wilson(s, n, z=1.0)
    assert low <= narrower[0] + 1e-12 and narrower[1] <= high + 1e-12


# -- quantile and bootstrap ---------------------------------------------------------------


def test_quantile_interpolates_like_numpy_linear() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert quantile(values, 0.5) == 2.5
    assert quantile(values, 0.95) == pytest.approx(3.85)
    assert quantile(values, 0.0) == 1.0 and quantile(values, 1.0) == 4.0
    assert quantile([], 0.5) == 0.0


@given(rates)
def test_bootstrap_interval_brackets_the_mean_within_the_data_range(values: list[float]) -> None:
    low, high = bootstrap_interval(values, resamples=200)
    mean = math.fsum(values) / len(values)
    assert min(values) - 1e-9 <= low <= high <= max(values) + 1e-9
    if len(set(values)) == 1:
        assert low == pytest.approx(mean) and high == pytest.approx(mean)


def test_bootstrap_is_deterministic_per_seed_and_narrows_with_more_scenarios() -> None:
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 0.5, 1.0, 0.0]
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)
    few_low, few_high = bootstrap_interval(values)
    many_low, many_high = bootstrap_interval(values * 8)
    assert many_high - many_low < few_high - few_low
    assert bootstrap_interval([0.7, 0.7, 0.7]) == pytest.approx((0.7, 0.7))
    with pytest.raises(ValueError, match="at least one scenario"):
        bootstrap_interval([])


@given(rates, st.floats(min_value=-0.5, max_value=0.5))
def test_paired_delta_of_a_constant_shift_is_that_shift(values: list[float], shift: float) -> None:
    delta, low, high = paired_bootstrap_delta(values, [v + shift for v in values], resamples=100)
    assert delta == pytest.approx(shift, abs=1e-9)
    assert low == pytest.approx(shift, abs=1e-9) and high == pytest.approx(shift, abs=1e-9)


@given(rates, rates)
def test_paired_delta_is_antisymmetric(a: list[float], b: list[float]) -> None:
    size = min(len(a), len(b))
    a, b = a[:size], b[:size]
    forward = paired_bootstrap_delta(a, b, resamples=100, seed=1)
    backward = paired_bootstrap_delta(b, a, resamples=100, seed=1)
    assert forward[0] == pytest.approx(-backward[0], abs=1e-9)
    assert forward[1] == pytest.approx(-backward[2], abs=1e-9)
    assert forward[2] == pytest.approx(-backward[1], abs=1e-9)


def test_pairing_removes_the_spread_between_scenarios() -> None:
    """Scenarios differ wildly, but the candidate gains on all but one: resampling scenarios
    jointly keeps the interval above zero."""
    baseline = [0.0, 1.0, 0.25, 0.75, 0.0, 0.5, 0.25, 0.5]
    candidate = [v + 0.25 if v <= 0.75 else v for v in baseline]
    delta, low, high = paired_bootstrap_delta(baseline, candidate)
    assert delta == pytest.approx(0.21875) and 0.0 < low <= delta <= high
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap_delta([1.0], [1.0, 0.0])


# -- sign test -----------------------------------------------------------------------------


def test_sign_test_known_values() -> None:
    assert sign_test_p(8, 0) == 0.0078125
    assert sign_test_p(0, 8) == 0.0078125
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(1, 1) == 1.0
    assert sign_test_p(5, 0) == 0.0625
    assert sign_test_p(9, 1) == pytest.approx(0.021484375)


@given(st.integers(min_value=0, max_value=60), st.integers(min_value=0, max_value=60))
def test_sign_test_is_a_symmetric_probability_that_shrinks_with_a_wider_split(
    improved: int, regressed: int
) -> None:
    p = sign_test_p(improved, regressed)
    assert 0.0 < p <= 1.0
    assert p == sign_test_p(regressed, improved)
    if improved >= regressed:
        assert sign_test_p(improved + 1, regressed) <= p
