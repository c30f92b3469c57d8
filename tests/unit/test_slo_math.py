"""The SLO arithmetic: compliance, budgets, burn rates and the multiwindow decision."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deputy.observability.slo import (
    BURN_RULES,
    BURN_WINDOWS,
    Counts,
    budget_remaining,
    burn_rate,
    compliance,
    decide,
    error_budget,
    finite,
)


def uniform(bad: int, total: int) -> dict[str, Counts]:
    """The same counts in every burn window (errors spread evenly enough for a test)."""
    return {window.name: Counts(total - bad, total) for window in BURN_WINDOWS}


def test_counts_refuse_impossible_numbers() -> None:
    with pytest.raises(ValueError, match="between 0 and total"):
        Counts(good=5, total=3)
    with pytest.raises(ValueError, match="between 0 and total"):
        Counts(good=-1, total=3)
    assert Counts(3, 5) + Counts(1, 2) == Counts(4, 7)
    assert Counts(3, 5).bad == 2
    assert Counts().error_ratio is None


def test_compliance_and_budgets() -> None:
    assert compliance(Counts()) is None
    assert compliance(Counts(995, 1000)) == pytest.approx(0.995)
    assert error_budget(0.995) == pytest.approx(0.005)
    assert error_budget(1.0) == 0.0
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        error_budget(0.0)
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        error_budget(1.5)


def test_budget_remaining_spent_and_overspent() -> None:
    assert budget_remaining(Counts(1000, 1000), 0.99) == pytest.approx(1.0)
    assert budget_remaining(Counts(995, 1000), 0.99) == pytest.approx(0.5)
    assert budget_remaining(Counts(990, 1000), 0.99) == pytest.approx(0.0)
    # Three times the allowed failures: the budget is overspent twice over, and it says so.
    assert budget_remaining(Counts(970, 1000), 0.99) == pytest.approx(-2.0)
    assert budget_remaining(Counts(), 0.99) is None


def test_burn_rate() -> None:
    assert burn_rate(Counts(), 0.999) is None
    assert burn_rate(Counts(100, 100), 0.999) == 0.0
    # 1.44 % errors against a 0.1 % budget: the fast-page burn rate of the SRE workbook.
    assert burn_rate(Counts(9856, 10000), 0.999) == pytest.approx(14.4)
    assert burn_rate(Counts(99, 100), 0.99) == pytest.approx(1.0)


def test_an_objective_of_one_has_no_budget() -> None:
    assert burn_rate(Counts(10, 10), 1.0) == 0.0
    assert burn_rate(Counts(9, 10), 1.0) == math.inf
    assert budget_remaining(Counts(9, 10), 1.0) == -math.inf
    assert finite(math.inf) is None and finite(-math.inf) is None and finite(2.5) == 2.5
    assert decide(uniform(1, 20), 1.0).severity == "page"


@given(
    good=st.integers(0, 10_000),
    extra=st.integers(0, 10_000),
    objective=st.floats(0.5, 0.9999),
)
def test_burn_and_budget_agree(good: int, extra: int, objective: float) -> None:
    counts = Counts(good, good + extra)
    rate, left = burn_rate(counts, objective), budget_remaining(counts, objective)
    if counts.total == 0:
        assert rate is None and left is None
        return
    assert rate is not None and left is not None
    assert rate >= 0
    assert left == pytest.approx(1.0 - rate)
    ratio = counts.bad / counts.total
    assert rate * (1 - objective) == pytest.approx(ratio)


def test_the_rules_are_the_workbook_ones() -> None:
    table = {(r.severity, r.long, r.short, r.threshold) for r in BURN_RULES}
    assert table == {
        ("page", "1h", "5m", 14.4),
        ("page", "6h", "30m", 6.0),
        ("ticket", "1d", "2h", 3.0),
        ("ticket", "3d", "6h", 1.0),
    }


def test_no_data_never_alerts() -> None:
    decision = decide({}, 0.99)
    assert decision.severity is None
    assert all(r.long_burn is None and r.short_burn is None for r in decision.rules)


def test_a_fast_burn_pages() -> None:
    # 20 % errors against a 1 % budget is a burn rate of 20, above every threshold.
    decision = decide(uniform(20, 100), 0.99)
    assert decision.severity == "page"
    assert {r.rule.severity for r in decision.fired} == {"page", "ticket"}


def test_both_windows_must_burn() -> None:
    # The hour burns (20x) but the last 5 minutes are clean: the burning stopped, no page.
    counts = uniform(20, 100) | {"5m": Counts(50, 50), "30m": Counts(50, 50)}
    decision = decide(counts, 0.99)
    assert not any(r.fires for r in decision.rules if r.rule.severity == "page")
    # The last 5 minutes burn but the hour as a whole does not: a blip, no page either.
    blip = uniform(0, 10_000) | {"5m": Counts(80, 100)}
    assert decide(blip, 0.99).severity is None


def test_a_slow_burn_files_a_ticket_not_a_page() -> None:
    # 4 % errors against a 1 % budget: burn rate 4: above the ticket's 3, below the pages'.
    decision = decide(uniform(4, 100), 0.99)
    assert decision.severity == "ticket"
    assert [r.rule.long for r in decision.fired] == ["1d", "3d"]


def test_thresholds_are_exclusive() -> None:
    # Exactly 6x over 6h and 30m (and nothing above 14.4): the 6h rule does not fire.
    decision = decide(uniform(6, 100), 0.99)
    page_6h = next(r for r in decision.rules if r.rule.long == "6h")
    assert page_6h.long_burn == pytest.approx(6.0) and not page_6h.fires
    assert decision.severity == "ticket"


def test_too_few_events_in_the_short_window_do_not_alert() -> None:
    # One failure out of two requests is a 50 % error ratio, but it is not evidence.
    assert decide(uniform(1, 2), 0.99, min_events=10).severity is None
    assert decide(uniform(5, 10), 0.99, min_events=10).severity == "page"
    result = next(r for r in decide(uniform(1, 2), 0.99).rules if r.rule.short == "5m")
    assert result.short_events == 2 and not result.fires


def test_min_events_counts_the_short_window_only() -> None:
    counts = uniform(50, 100) | {"5m": Counts(1, 9)}
    fast_page = next(r for r in decide(counts, 0.99, min_events=10).rules if r.rule.short == "5m")
    assert not fast_page.fires
    assert decide(counts, 0.99, min_events=10).severity == "page"  # 6h/30m still pages


def test_missing_windows_are_empty() -> None:
    # Only the short windows burn; the long ones have no data: nothing fires.
    assert decide({"5m": Counts(0, 50), "30m": Counts(0, 50)}, 0.99).severity is None


def test_float_noise_does_not_cross_a_threshold() -> None:
    # 12 of 20 bad against a 10 % budget is a burn rate of exactly 6 (in floats, 0.6 / (1 -
    # 0.9) is 6.000000000000001): the 6h/30m page must not fire.
    assert burn_rate(Counts(8, 20), 0.9) == 6.0
    assert error_budget(0.9) == 0.1
    assert decide(uniform(12, 20), 0.9).severity == "ticket"
