"""A/B comparison of two sandbox runs on the same suite and seeds: per-scenario pass rates,
regressions called out, the change in pass^1 with a paired bootstrap interval, and an exact
sign test over the scenarios whose rate changed. This is the evidence a proposal attaches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deputy.domain.sandbox_results import Comparison, Estimate, ScenarioDiff, TrialResult
from deputy.sandbox.stats import paired_bootstrap_delta, sign_test_p

ALPHA = 0.05
RESAMPLES = 2000


@dataclass(frozen=True)
class _Rate:
    successes: int
    trials: int

    @property
    def value(self) -> float:
        return self.successes / self.trials


def _rates(results: Sequence[TrialResult]) -> dict[str, _Rate]:
    """Pass rate per scenario, in the order scenarios first appear; a repeated (scenario, trial)
    counts once (the last result given)."""
    passed: dict[str, dict[int, bool]] = {}
    for result in results:
        passed.setdefault(result.scenario_id, {})[result.trial] = result.passed
    return {sid: _Rate(sum(trials.values()), len(trials)) for sid, trials in passed.items()}


def _diff(scenario_id: str, baseline: _Rate, candidate: _Rate) -> ScenarioDiff:
    # Cross-multiplied so that 1/2 and 2/4 compare equal exactly.
    order = candidate.successes * baseline.trials - baseline.successes * candidate.trials
    return ScenarioDiff(
        scenario_id=scenario_id,
        baseline_rate=baseline.value,
        candidate_rate=candidate.value,
        delta=candidate.value - baseline.value if order else 0.0,
        status="improved" if order > 0 else "regressed" if order < 0 else "same",
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def compare(
    baseline: Sequence[TrialResult], candidate: Sequence[TrialResult], *, seed: int = 0
) -> Comparison:
    """Compare `candidate` with `baseline` over the scenarios both have (in the baseline's
    order). The verdict is `better` or `worse` only when the sign test gives p < 0.05 and more
    scenarios moved in that direction; otherwise `no_significant_difference`."""
    base, cand = _rates(baseline), _rates(candidate)
    shared = [sid for sid in base if sid in cand]
    diffs = [_diff(sid, base[sid], cand[sid]) for sid in shared]
    # Largest change first; sorting is stable, so ties keep the baseline's order.
    improved = sorted((d for d in diffs if d.status == "improved"), key=lambda d: -d.delta)
    regressed = sorted((d for d in diffs if d.status == "regressed"), key=lambda d: d.delta)
    p_value = sign_test_p(len(improved), len(regressed))
    before = [d.baseline_rate for d in diffs]
    after = [d.candidate_rate for d in diffs]
    method = (
        f"candidate - baseline pass^1 over {len(diffs)} shared scenarios; 95% paired "
        f"percentile bootstrap over scenarios ({RESAMPLES} resamples, seed {seed})"
    )
    if diffs:
        delta, low, high = paired_bootstrap_delta(before, after, resamples=RESAMPLES, seed=seed)
    else:
        delta = low = high = 0.0
    return Comparison(
        scenarios=len(diffs),
        baseline_pass_1=_mean(before),
        candidate_pass_1=_mean(after),
        delta_pass_1=Estimate(value=delta, low=low, high=high, method=method),
        p_value=p_value,
        verdict=(
            "no_significant_difference"
            if p_value >= ALPHA
            else "better"
            if len(improved) > len(regressed)
            else "worse"
        ),
        regressions=tuple(d.scenario_id for d in regressed),
        improvements=tuple(d.scenario_id for d in improved),
        per_scenario=tuple(diffs),
        only_in_baseline=tuple(sid for sid in base if sid not in cand),
        only_in_candidate=tuple(sid for sid in cand if sid not in base),
    )


def render_comparison(c: Comparison) -> str:
    """The comparison as plain text: the verdict and its numbers, regressions first, then
    improvements, then scenarios only one run has."""
    delta = c.delta_pass_1
    lines = [
        f"verdict: {c.verdict.replace('_', ' ')} (sign test p = {c.p_value:.4f}, "
        f"{len(c.improvements)} improved, {len(c.regressions)} regressed, "
        f"{c.scenarios - len(c.improvements) - len(c.regressions)} unchanged "
        f"of {c.scenarios} shared scenarios)",
        f"pass^1: baseline {c.baseline_pass_1:.3f} -> candidate {c.candidate_pass_1:.3f} "
        f"(delta {delta.value:+.3f} [{delta.low:+.3f}, {delta.high:+.3f}])",
    ]
    by_id = {d.scenario_id: d for d in c.per_scenario}
    for title, ids in (("regressions", c.regressions), ("improvements", c.improvements)):
        if ids:
            lines.append(f"{title}:")
            lines.extend(
                f"  {sid}: {by_id[sid].baseline_rate:.2f} -> {by_id[sid].candidate_rate:.2f} "
                f"({by_id[sid].delta:+.2f})"
                for sid in ids
            )
    if c.only_in_baseline:
        lines.append("only in baseline: " + ", ".join(c.only_in_baseline))
    if c.only_in_candidate:
        lines.append("only in candidate: " + ", ".join(c.only_in_candidate))
    return "\n".join(lines)
