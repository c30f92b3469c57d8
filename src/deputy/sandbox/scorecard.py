"""The scorecard of a sandbox run: per-scenario results and the run's pass^k with intervals,
outcomes, cost and latency; and a plain-text rendering a CLI can print.

pass^k for the run is the mean over scenarios of each scenario's unbiased pass^k (tau2's
definition), for k up to the fewest trials any scenario has; its interval is a percentile
bootstrap over scenarios (`deputy.sandbox.stats`)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from deputy.domain.sandbox_results import (
    CostSummary,
    Estimate,
    LatencySummary,
    ScenarioScore,
    Scorecard,
    TrialResult,
    UsageTotals,
)
from deputy.domain.scenarios import Scenario, ScenarioSuite
from deputy.sandbox.stats import bootstrap_interval, pass_hat_k, quantile

RESAMPLES = 2000
SEED = 0


def _trial_cost(result: TrialResult) -> float | None:
    """What one conversation cost across roles; None when no role's model is priced."""
    return result.agent_usage.plus(result.customer_usage).plus(result.judge_usage).cost_usd


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return _mean(known) if known else None


def _score(scenario: Scenario, trials: Sequence[TrialResult]) -> ScenarioScore:
    successes = sum(result.passed for result in trials)
    failed: Counter[str] = Counter()
    for result in trials:
        failed.update({check.kind for check in result.checks if not check.passed})
    return ScenarioScore(
        scenario_id=scenario.id,
        title=scenario.title,
        kind=scenario.kind,
        trials=len(trials),
        successes=successes,
        mean_reward=_mean([result.reward for result in trials]),
        pass_hat={k: pass_hat_k(len(trials), successes, k) for k in range(1, len(trials) + 1)},
        passed=tuple(result.passed for result in trials),
        outcomes=tuple(result.outcome for result in trials),
        failed_checks=dict(sorted(failed.items())),
        mean_cost_usd=_mean_or_none([_trial_cost(result) for result in trials]),
        mean_seconds=_mean([result.seconds for result in trials]),
    )


def _grouped(
    suite: ScenarioSuite, results: Sequence[TrialResult]
) -> list[tuple[Scenario, list[TrialResult]]]:
    """Each scenario of the suite with its results in trial order; a repeated (scenario, trial)
    keeps the last result given (a resumed run may report a trial again)."""
    by_key = {(result.scenario_id, result.trial): result for result in results}
    groups = []
    for scenario in suite.scenarios:
        trials = sorted(
            (result for (sid, _), result in by_key.items() if sid == scenario.id),
            key=lambda result: result.trial,
        )
        if trials:
            groups.append((scenario, trials))
    return groups


def _pass_hat(scores: Sequence[ScenarioScore], k_max: int) -> dict[int, Estimate]:
    estimates = {}
    for k in range(1, k_max + 1):
        values = [score.pass_hat[k] for score in scores]
        low, high = bootstrap_interval(values, resamples=RESAMPLES, seed=SEED)
        estimates[k] = Estimate(
            value=_mean(values),
            low=low,
            high=high,
            method=(
                f"mean over {len(values)} scenarios of the unbiased pass^{k} "
                f"(C(c,{k})/C(n,{k})); 95% percentile bootstrap over scenarios "
                f"({RESAMPLES} resamples, seed {SEED})"
            ),
        )
    return estimates


def _cost(results: Sequence[TrialResult]) -> CostSummary:
    """Usage summed per role; the mean cost is over the conversations that have a price (a
    trial that failed before any priced call has none)."""
    agent = customer = judge = UsageTotals()
    for result in results:
        agent = agent.plus(result.agent_usage)
        customer = customer.plus(result.customer_usage)
        judge = judge.plus(result.judge_usage)
    return CostSummary(
        total_usd=agent.plus(customer).plus(judge).cost_usd,
        mean_per_conversation_usd=_mean_or_none([_trial_cost(result) for result in results]),
        agent=agent,
        customer=customer,
        judge=judge,
    )


def _latency(results: Sequence[TrialResult]) -> LatencySummary:
    seconds = [result.seconds for result in results]
    turns = [turn for result in results for turn in result.turn_seconds]
    return LatencySummary(
        conversation_mean_seconds=_mean(seconds),
        conversation_p95_seconds=quantile(seconds, 0.95),
        turn_p50_seconds=quantile(turns, 0.5),
        turn_p95_seconds=quantile(turns, 0.95),
    )


def scorecard(suite: ScenarioSuite, results: Sequence[TrialResult]) -> Scorecard:
    """The scorecard of `results` against `suite`: scenarios in suite order, those without
    results left out, results for scenarios the suite does not have ignored. Trials that could
    not run (termination `error`) count as failures and are also counted in `errors`."""
    groups = _grouped(suite, results)
    scores = [_score(scenario, trials) for scenario, trials in groups]
    scored = [result for _, trials in groups for result in trials]
    k_max = min((score.trials for score in scores), default=0)
    outcomes = Counter(result.outcome or "none" for result in scored)
    return Scorecard(
        scenarios=len(scores),
        trials_per_scenario=k_max,
        conversations=len(scored),
        pass_hat=_pass_hat(scores, k_max),
        mean_reward=_mean([result.reward for result in scored]),
        errors=sum(result.termination == "error" for result in scored),
        per_scenario=tuple(scores),
        outcomes=dict(sorted(outcomes.items())),
        cost=_cost(scored),
        latency=_latency(scored),
    )


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def render_scorecard(card: Scorecard) -> str:
    """The scorecard as a plain-text report: pass^k with intervals, outcomes, cost and latency,
    then a row per scenario with a ✓ or ✗ per trial, in trial order."""
    lines = [
        f"{card.scenarios} scenarios x {card.trials_per_scenario} trials "
        f"({card.conversations} conversations, {card.errors} errors); "
        f"mean reward {card.mean_reward:.3f}",
    ]
    for k, estimate in card.pass_hat.items():
        lines.append(f"pass^{k}  {estimate.value:.3f}  [{estimate.low:.3f}, {estimate.high:.3f}]")
    if card.outcomes:
        lines.append(
            "outcomes: " + ", ".join(f"{name} {count}" for name, count in card.outcomes.items())
        )
    roles = ", ".join(
        f"{name}: {usage.calls} calls, {usage.input_tokens} in / {usage.output_tokens} out tokens"
        for name, usage in (
            ("agent", card.cost.agent),
            ("customer", card.cost.customer),
            ("judge", card.cost.judge),
        )
        if usage.calls
    )
    lines.append(
        f"cost: total {_usd(card.cost.total_usd)}, "
        f"per conversation {_usd(card.cost.mean_per_conversation_usd)}"
        + (f" ({roles})" if roles else "")
    )
    latency = card.latency
    lines.append(
        f"latency: conversation mean {latency.conversation_mean_seconds:.1f}s, "
        f"p95 {latency.conversation_p95_seconds:.1f}s; "
        f"turn p50 {latency.turn_p50_seconds:.2f}s, p95 {latency.turn_p95_seconds:.2f}s"
    )
    if not card.per_scenario:
        return "\n".join(lines)
    width = max(len("scenario"), *(len(score.scenario_id) for score in card.per_scenario))
    marks_width = max(len("trials"), *(score.trials for score in card.per_scenario))
    lines.append("")
    lines.append(
        f"{'scenario':<{width}}  {'trials':<{marks_width}}  pass^1  reward  "
        f"{'cost':<9}  {'secs':>6}  failed checks"
    )
    for score in card.per_scenario:
        marks = "".join("✓" if passed else "✗" for passed in score.passed)
        failed = ", ".join(f"{kind}: {n}" for kind, n in score.failed_checks.items())
        lines.append(
            f"{score.scenario_id:<{width}}  {marks:<{marks_width}}  {score.pass_hat[1]:<6.2f}  "
            f"{score.mean_reward:<6.2f}  {_usd(score.mean_cost_usd):<9}  "
            f"{score.mean_seconds:>6.1f}  {failed or '-'}"
        )
    return "\n".join(lines)
