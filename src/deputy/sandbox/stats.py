"""The statistics behind scorecards and A/B comparisons: tau2's pass^k estimator, interval
estimates over scenarios, and an exact sign test.

Scenarios, not trials, are the unit of resampling: trials of one scenario are not independent
(the same brief, the same tool world), so an interval that treated each conversation as a fresh
draw would be too narrow. Every random choice goes through a seeded `random.Random`, so a
scorecard computed twice from the same results is identical."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def pass_hat_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass^k (the chance that k independent trials all succeed) from
    `c` successes in `n` trials: C(c, k) / C(n, k), as tau2 computes it."""
    if not 0 <= c <= n:
        raise ValueError(f"successes must be within 0..{n}, got {c}")
    if k < 1 or k > n:
        raise ValueError(f"k must be within 1..{n}, got {k}")
    if c < k:
        return 0.0
    return math.comb(c, k) / math.comb(n, k)


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a binomial rate; (0, 1) when there are no trials."""
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..{n}, got {successes}")
    if n == 0:
        return 0.0, 1.0
    rate = successes / n
    denominator = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile of `values` with linear interpolation between order statistics (the
    'linear' method of numpy); 0.0 for no values."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within 0..1, got {q}")
    if not values:
        return 0.0
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _percentile_interval(means: Sequence[float], level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2
    return quantile(means, tail), quantile(means, 1.0 - tail)


def _check(resamples: int, level: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be within (0, 1), got {level}")


def bootstrap_interval(
    values_per_scenario: Sequence[float],
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """A percentile bootstrap interval of the mean over scenarios: scenarios are drawn with
    replacement `resamples` times and the mean of each draw recorded."""
    _check(resamples, level)
    if not values_per_scenario:
        raise ValueError("a bootstrap needs at least one scenario")
    rng = random.Random(seed)
    n = len(values_per_scenario)
    means = [
        _mean([values_per_scenario[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples)
    ]
    return _percentile_interval(means, level)


def paired_bootstrap_delta(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """The mean of `b - a` over scenarios and its percentile bootstrap interval. `a[i]` and
    `b[i]` are the same scenario under two versions; each draw resamples scenarios jointly, so
    the interval reflects the difference, not the spread of either run."""
    _check(resamples, level)
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    if not a:
        raise ValueError("a bootstrap needs at least one scenario")
    deltas = [y - x for x, y in zip(a, b, strict=True)]
    rng = random.Random(seed)
    n = len(deltas)
    means = [_mean([deltas[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples)]
    low, high = _percentile_interval(means, level)
    return _mean(deltas), low, high


def sign_test_p(improved: int, regressed: int) -> float:
    """The exact two-sided p-value of a sign test: the chance, if changes were equally likely
    to go either way, of a split at least this lopsided. 1.0 when nothing changed."""
    if improved < 0 or regressed < 0:
        raise ValueError("counts must not be negative")
    n = improved + regressed
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, j) for j in range(min(improved, regressed) + 1))
    return min(1.0, 2 * tail / (1 << n))
