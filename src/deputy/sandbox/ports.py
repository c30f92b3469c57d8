"""What a sandbox trial needs: a fresh tool world, a customer, a judge.

A **tool world** is the sandbox's copy of everything the agent's tools reach: each trial opens
its own (`WorldFactory.open`), so trials never see each other's writes and never reach the
client's production systems: the agent's executor gets the world's clients, and no other."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import JsonValue

from deputy.domain.sandbox_results import CheckKind, CheckResult, ToolCallRecord, TranscriptMessage
from deputy.domain.scenarios import GuardrailStage
from deputy.domain.spec import AgentSpec
from deputy.llm.types import Usage
from deputy.tools.base import InvocationResult, ToolSourceClient

CustomerStop = Literal["stop", "transfer", "out_of_scope"]


class ToolWorld(Protocol):
    """One isolated copy of the tools' backend."""

    description: str
    """Where the tools go, for the run's record (e.g. 'simulation: retail (in process)')."""

    def clients(self, spec: AgentSpec) -> dict[str, ToolSourceClient]:
        """A client per source key (`deputy.tools.checks.source_key`) of the spec's tools that
        this world serves. A tool whose source is missing here is refused as unavailable."""
        ...

    async def call(self, operation: str, arguments: Mapping[str, Any]) -> InvocationResult:
        """Invoke an operation directly (not through an agent): replaying reference actions."""
        ...

    async def state(self) -> JsonValue | None:
        """The world's whole state (canonical JSON), None when it cannot be observed."""
        ...

    async def aclose(self) -> None: ...


class WorldFactory(Protocol):
    description: str

    async def open(self) -> ToolWorld:
        """A fresh world with its own copy of the seed state."""
        ...


@dataclass(frozen=True)
class CustomerTurn:
    """The customer's next message, or the end of the conversation (`stop`)."""

    text: str
    stop: CustomerStop | None = None
    usage: Usage = field(default_factory=Usage)
    calls: int = 0
    """Model calls it took (0 for a scripted customer)."""


class Customer(Protocol):
    async def next(self, transcript: Sequence[TranscriptMessage]) -> CustomerTurn:
        """The next customer message given the conversation so far (customer and agent lines;
        empty at the start)."""
        ...


@dataclass(frozen=True)
class Judgement:
    checks: tuple[CheckResult, ...]
    usage: Usage = field(default_factory=Usage)
    calls: int = 0


class Judge(Protocol):
    async def judge(
        self,
        assertions: Sequence[tuple[CheckKind, str]],
        transcript: Sequence[TranscriptMessage],
    ) -> Judgement:
        """One `CheckResult` per assertion, in order, each with the judge's reasoning.
        `nl_assertion` assertions must hold; `must_not` ones say what the agent must not do
        (passed = it did not)."""
        ...


@dataclass(frozen=True)
class TrialEvidence:
    """What a finished trial offers for evaluation."""

    transcript: tuple[TranscriptMessage, ...]
    tool_calls: tuple[ToolCallRecord, ...]
    outcome: str | None
    procedures: tuple[str, ...]
    guardrail_actions: tuple[tuple[GuardrailStage, str], ...] = ()
    """Every guardrail report of the conversation: (stage, action), the action one of allow,
    flag, mask, block, escalate."""
    db_match: bool | None = None
    """The world's end state equals the reference one; None when not compared."""
    db_detail: str = ""
    judged: tuple[CheckResult, ...] = ()
    """The judge's results for the scenario's `judge` (nl_assertion) and `must_not` assertions."""
    errors: tuple[str, ...] = field(default=())
