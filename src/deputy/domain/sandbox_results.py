"""What a sandbox run produces, as JSON-storable models: the result of each trial (one simulated
conversation), the scorecard of a run, and the A/B comparison of two runs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from deputy.domain.scenarios import RewardComponent, ScenarioKind

Role = Literal["customer", "agent", "tool", "event"]
Termination = Literal[
    "customer_stop",  # the customer said its goal was met (###STOP###) or the script ran out
    "transfer",  # the customer was transferred (###TRANSFER###) or the agent handed off
    "out_of_scope",  # the customer could not go on with what its brief gives (###OUT-OF-SCOPE###)
    "agent_ended",  # the agent ended the conversation (end_conversation)
    "max_turns",
    "error",  # the trial could not run (see `error`); it counts as failed
]
CheckKind = Literal[
    "db",
    "action",
    "forbidden_action",
    "communicate",
    "nl_assertion",
    "must_not",
    "outcome",
    "procedure",
    "guardrail",
]


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TranscriptMessage(_Result):
    """One line of a trial's transcript. Tool lines carry the call; event lines say what the
    runtime did (a handoff, a guardrail decision, a procedure exit)."""

    role: Role
    turn: int = Field(ge=0, description="The agent turn it belongs to (0: before the first).")
    text: str = ""
    tool: str | None = None
    arguments: dict[str, JsonValue] | None = None
    ok: bool | None = None
    data: dict[str, JsonValue] = Field(default_factory=dict)


class ToolCallRecord(_Result):
    """A tool call the agent made through the tool layer (refused ones included)."""

    tool: str
    arguments: dict[str, JsonValue]
    ok: bool
    code: str = Field(description="The executor's result code (ok, refused codes, tool_error).")
    output: JsonValue = None
    turn: int = 0


class CheckResult(_Result):
    kind: CheckKind
    passed: bool
    detail: str = Field(description="What was checked and what was found, for a reviewer.")
    reasoning: str | None = Field(default=None, description="The judge's reasoning (model checks).")


class UsageTotals(_Result):
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = Field(
        default=None, description="None when the model has no price (a local model costs 0)."
    )

    def plus(self, other: UsageTotals) -> UsageTotals:
        cost = (
            None
            if self.cost_usd is None and other.cost_usd is None
            else (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        )
        return UsageTotals(
            calls=self.calls + other.calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=cost,
        )


class TrialResult(_Result):
    scenario_id: str
    trial: int = Field(ge=0)
    seed: int
    reward: float = Field(ge=0.0, le=1.0, description="The product of `components`.")
    passed: bool = Field(description="reward == 1.0 and the trial ran without error.")
    components: dict[RewardComponent, float] = Field(default_factory=dict)
    checks: tuple[CheckResult, ...] = ()
    outcome: str | None = Field(default=None, description="The runtime's conversation outcome.")
    procedures: tuple[str, ...] = Field(default=(), description="Procedures that reached an exit.")
    termination: Termination
    turns: int = 0
    transcript: tuple[TranscriptMessage, ...] = ()
    tool_calls: tuple[ToolCallRecord, ...] = ()
    agent_usage: UsageTotals = UsageTotals()
    customer_usage: UsageTotals = UsageTotals()
    judge_usage: UsageTotals = UsageTotals()
    seconds: float = Field(default=0.0, ge=0.0, description="Wall time of the conversation.")
    turn_seconds: tuple[float, ...] = Field(
        default=(), description="Agent time per turn (the customer's time excluded)."
    )
    error: str | None = None


class Estimate(_Result):
    """A rate with its 95% confidence interval."""

    value: float
    low: float
    high: float
    method: str = Field(description="How the interval was computed (e.g. a bootstrap).")


class ScenarioScore(_Result):
    scenario_id: str
    title: str
    kind: ScenarioKind
    trials: int
    successes: int
    mean_reward: float
    pass_hat: dict[int, float] = Field(description="pass^k for k = 1..trials (unbiased).")
    passed: tuple[bool, ...] = Field(description="Whether each trial passed, in trial order.")
    outcomes: tuple[str | None, ...] = Field(description="Each trial's outcome, in trial order.")
    failed_checks: dict[str, int] = Field(
        default_factory=dict, description="Check kind -> trials where it failed."
    )
    mean_cost_usd: float | None = None
    mean_seconds: float = 0.0


class LatencySummary(_Result):
    conversation_mean_seconds: float = 0.0
    conversation_p95_seconds: float = 0.0
    turn_p50_seconds: float = 0.0
    turn_p95_seconds: float = 0.0


class CostSummary(_Result):
    total_usd: float | None = None
    mean_per_conversation_usd: float | None = None
    agent: UsageTotals = UsageTotals()
    customer: UsageTotals = UsageTotals()
    judge: UsageTotals = UsageTotals()


class Scorecard(_Result):
    scenarios: int
    trials_per_scenario: int = Field(description="k: the fewest trials any scenario has.")
    conversations: int
    pass_hat: dict[int, Estimate] = Field(description="pass^k for k = 1..trials_per_scenario.")
    mean_reward: float
    errors: int = Field(description="Trials that could not run.")
    per_scenario: tuple[ScenarioScore, ...] = ()
    outcomes: dict[str, int] = Field(default_factory=dict, description="Outcome -> trials.")
    cost: CostSummary = CostSummary()
    latency: LatencySummary = LatencySummary()


class ScenarioDiff(_Result):
    scenario_id: str
    baseline_rate: float
    candidate_rate: float
    delta: float
    status: Literal["improved", "regressed", "same"]


class Comparison(_Result):
    """Candidate against baseline on the same suite and seeds."""

    scenarios: int = Field(description="Scenarios both runs have.")
    baseline_pass_1: float
    candidate_pass_1: float
    delta_pass_1: Estimate = Field(description="candidate - baseline, paired bootstrap interval.")
    p_value: float = Field(
        description="Two-sided exact sign test over scenarios whose pass rate changed."
    )
    verdict: Literal["better", "worse", "no_significant_difference"]
    regressions: tuple[str, ...] = ()
    improvements: tuple[str, ...] = ()
    per_scenario: tuple[ScenarioDiff, ...] = ()
    only_in_baseline: tuple[str, ...] = ()
    only_in_candidate: tuple[str, ...] = ()
