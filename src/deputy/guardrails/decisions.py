"""What a guardrail decided and why, in a form the runtime stores on the turn.

A `GuardrailDecision` is one check's verdict with a human-readable reason that names what matched
(never the matched personal data itself). A `GuardrailReport` collects one stage's decisions in
the order they ran, the resulting action and the text to continue with (masked or amended by the
checks), plus `stored_text`, the form to persist in transcripts and logs. Both are frozen Pydantic
models: `report.model_dump(mode="json")` is what goes into the turn record."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

Stage = Literal["input", "tool", "output"]
Verdict = Literal["allow", "flag", "mask", "block", "escalate"]

SEVERITY: dict[Verdict, int] = {"allow": 0, "flag": 1, "mask": 2, "escalate": 3, "block": 4}
"""Verdicts from mildest to most severe; a report's action is the most severe of its decisions."""

STOPPING: frozenset[Verdict] = frozenset({"block", "escalate"})
"""Verdicts after which no further check runs and the guarded action does not happen."""


class GuardrailDecision(BaseModel):
    """One check's verdict. `check` is a stable dotted name (`prompt_injection.heuristic`);
    `details` is JSON-safe and never holds a raw personal value (kinds, counts, spans do)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: Stage
    check: str = Field(min_length=1, max_length=100)
    verdict: Verdict
    reason: str = Field(min_length=1, max_length=2000)
    details: dict[str, JsonValue] = Field(default_factory=dict)

    @property
    def stops(self) -> bool:
        return self.verdict in STOPPING


class GuardrailReport(BaseModel):
    """The decisions of one stage, in the order the checks ran. `text` is what the runtime
    continues with (the reply with other people's PII masked and disclaimers appended, or the
    customer's text unchanged); `stored_text` is what transcripts and logs may keep."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: Stage
    action: Verdict
    text: str
    stored_text: str
    decisions: tuple[GuardrailDecision, ...] = ()

    @classmethod
    def of(
        cls,
        stage: Stage,
        decisions: Sequence[GuardrailDecision],
        *,
        text: str,
        stored_text: str | None = None,
    ) -> GuardrailReport:
        return cls(
            stage=stage,
            action=worst(decision.verdict for decision in decisions),
            text=text,
            stored_text=text if stored_text is None else stored_text,
            decisions=tuple(decisions),
        )

    @property
    def blocked(self) -> bool:
        return self.action == "block"

    @property
    def escalated(self) -> bool:
        return self.action == "escalate"

    @property
    def proceeds(self) -> bool:
        """True when the guarded action (acting on the input, sending the reply) may go ahead."""
        return self.action not in STOPPING

    @property
    def stopped_by(self) -> GuardrailDecision | None:
        """The decision that stopped the stage, if one did."""
        return next((d for d in self.decisions if d.stops), None)

    def reasons(self) -> list[str]:
        """The reasons of every decision that was not a plain allow."""
        return [f"{d.check}: {d.reason}" for d in self.decisions if d.verdict != "allow"]


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The most severe of `verdicts` ("allow" for none)."""
    result: Verdict = "allow"
    for verdict in verdicts:
        if SEVERITY[verdict] > SEVERITY[result]:
            result = verdict
    return result
