"""SLO arithmetic: compliance, error budgets, burn rates and the multiwindow, multi-burn-rate
alert decision of the Google SRE workbook (chapter "Alerting on SLOs"). Pure: counts in,
numbers and decisions out.

An SLI is a count of good events out of all events over a window. With objective `o` (0.995:
99.5 % of events good):

- compliance = good / total (None without events);
- error budget = 1 - o, the share of events allowed to be bad;
- budget remaining = 1 - (bad / total) / (1 - o): 1.0 untouched, 0 spent, negative overspent;
- burn rate over a window = (bad / total) / (1 - o): 1 spends the budget exactly over the SLO
  window, 14.4 spends a 30-day budget's 2 % in one hour.

An alert fires when the burn rate exceeds a rule's threshold over BOTH its long window (the
budget really burns) and its short window (it still burns now, so the alert resolves soon after
the burning stops); rules for a 30-day-like SLO window, as Deputy's Prometheus rules:

    page:   1h and 5m > 14.4,  or 6h and 30m > 6
    ticket: 1d and 2h > 3,     or 3d and 6h > 1

No events in a window means no alert (nothing is known), and a rule needs at least
`min_events` events in its short window, so one failure out of two requests does not page.

An objective of 1 leaves no error budget: any bad event burns it at an infinite rate
(`math.inf`; budget remaining `-math.inf`); callers that serialise numbers as JSON turn
non-finite values into null (`finite`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from deputy.domain.alerts import Severity, SliName

SLI_NAMES: tuple[SliName, ...] = ("availability", "latency", "accuracy")
SEVERITIES: tuple[Severity, ...] = ("page", "ticket")

LATENCY_OBJECTIVE = 0.95
"""A p95 latency target means 95 % of answers come within it: the latency SLI's objective."""

DEFAULT_MIN_EVENTS = 10


@dataclass(frozen=True)
class Window:
    name: str
    seconds: int


BURN_WINDOWS: tuple[Window, ...] = (
    Window("5m", 5 * 60),
    Window("30m", 30 * 60),
    Window("1h", 3600),
    Window("2h", 2 * 3600),
    Window("6h", 6 * 3600),
    Window("1d", 86400),
    Window("3d", 3 * 86400),
)


@dataclass(frozen=True)
class BurnRule:
    severity: Severity
    long: str
    short: str
    threshold: float


BURN_RULES: tuple[BurnRule, ...] = (
    BurnRule("page", "1h", "5m", 14.4),
    BurnRule("page", "6h", "30m", 6.0),
    BurnRule("ticket", "1d", "2h", 3.0),
    BurnRule("ticket", "3d", "6h", 1.0),
)


@dataclass(frozen=True)
class Counts:
    """Good events out of `total` over one window."""

    good: int = 0
    total: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.good <= self.total:
            raise ValueError(f"good ({self.good}) must be between 0 and total ({self.total})")

    @property
    def bad(self) -> int:
        return self.total - self.good

    @property
    def error_ratio(self) -> float | None:
        return self.bad / self.total if self.total else None

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.good + other.good, self.total + other.total)


PRECISION = 9
"""Decimal places burn rates are rounded to, so that float noise (0.6 / (1 - 0.9) is
6.000000000000001) never decides whether a threshold is crossed."""


def error_budget(objective: float) -> float:
    """The share of events allowed to be bad."""
    if not 0 < objective <= 1:
        raise ValueError(f"an objective is in (0, 1], got {objective}")
    return round(1.0 - objective, PRECISION + 3)


def compliance(counts: Counts) -> float | None:
    """The share of good events; None without events."""
    return counts.good / counts.total if counts.total else None


def burn_rate(counts: Counts, objective: float) -> float | None:
    """How fast the window's bad events spend the error budget (1: exactly over the SLO
    window); None without events."""
    budget = error_budget(objective)
    ratio = counts.error_ratio
    if ratio is None:
        return None
    if budget == 0:
        return math.inf if counts.bad else 0.0
    return round(ratio / budget, PRECISION)


def budget_remaining(counts: Counts, objective: float) -> float | None:
    """The error budget left over the window: 1 untouched, 0 spent, below 0 overspent; None
    without events."""
    rate = burn_rate(counts, objective)
    return None if rate is None else 1.0 - rate


def finite(value: float | None) -> float | None:
    """`value` when it is a finite number, else None (JSON has no infinity)."""
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class RuleResult:
    """One rule checked: both windows' burn rates and whether it fires."""

    rule: BurnRule
    long_burn: float | None
    short_burn: float | None
    short_events: int
    fires: bool


@dataclass(frozen=True)
class BurnDecision:
    """Every rule's result and the severity that fires (the highest; None: no alert)."""

    severity: Severity | None
    rules: tuple[RuleResult, ...]

    @property
    def fired(self) -> tuple[RuleResult, ...]:
        return tuple(result for result in self.rules if result.fires)


def check_rule(
    rule: BurnRule, windows: Mapping[str, Counts], objective: float, min_events: int
) -> RuleResult:
    long, short = windows.get(rule.long, Counts()), windows.get(rule.short, Counts())
    long_burn, short_burn = burn_rate(long, objective), burn_rate(short, objective)
    fires = (
        short.total >= max(1, min_events)
        and long_burn is not None
        and short_burn is not None
        and long_burn > rule.threshold
        and short_burn > rule.threshold
    )
    return RuleResult(rule, long_burn, short_burn, short.total, fires)


def decide(
    windows: Mapping[str, Counts],
    objective: float,
    *,
    min_events: int = DEFAULT_MIN_EVENTS,
    rules: tuple[BurnRule, ...] = BURN_RULES,
) -> BurnDecision:
    """Which severity fires for an SLI with these counts per window (`BURN_WINDOWS` names; a
    missing window has no events)."""
    results = tuple(check_rule(rule, windows, objective, min_events) for rule in rules)
    firing = {result.rule.severity for result in results if result.fires}
    severity = next((s for s in SEVERITIES if s in firing), None)
    return BurnDecision(severity, results)
