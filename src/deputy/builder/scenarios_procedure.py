"""Scenarios for one procedure: its happy path and the edge cases its structure implies
(each check failing, each confirmation declined, each handoff reached, each limit exceeded)."""

from __future__ import annotations

import re

from deputy.builder.scenarios_brief import brief, customer_knows, scenario_id, second_person
from deputy.builder.scenarios_paths import (
    Path,
    ending_at,
    happy_path,
    outcome,
    taking,
    writes,
)
from deputy.domain.scenarios import Scenario, ScenarioAssertions, ToolCallExpectation
from deputy.domain.spec import AgentSpec, ArgumentLimit, Procedure, Provenance

_SLOT = re.compile(r"(?<!\{)\{([a-z][a-z0-9_]*)\}(?!\})")
_CLOSING = re.compile(r"\b(thank|goodbye|bye|anything else|have a (great|nice|good))\b", re.I)
_ESCALATION_WORDS = re.compile(
    r"\b(human|manager|supervisor|escalat\w*|approv\w*|colleague|team lead)\b", re.IGNORECASE
)


def _facts(procedure: Procedure, path: Path) -> tuple[str, ...]:
    """The final `say` / `end` texts of a path that state facts (no question, no pleasantry),
    slots filled in from what the customer knows; texts needing other values (a tool's result,
    literal braces) are skipped."""
    knows = customer_knows(procedure)
    facts: list[str] = []
    for step in path.steps[-2:]:
        if step.kind not in ("say", "end") or not step.text or "?" in step.text:
            continue
        if _CLOSING.search(step.text) and not re.search(r"\d", step.text):
            continue
        filled = _SLOT.sub(lambda m: knows.get(m.group(1), m.group(0)), step.text)
        if "{" not in filled and "}" not in filled:
            facts.append(filled)
    return tuple(facts)


def _situation(procedure: Procedure, path: Path) -> str:
    """What the customer's case is on a path: the answer to each check on it."""
    said: list[str] = []
    for step_id, answer in path.answers:
        step = procedure.step(step_id)
        if step is not None and step.kind == "check":
            said.append(
                f'The answer to "{second_person(step.condition or "")}" is {answer} for you.'
            )
    return " ".join(said)


def happy_scenario(spec: AgentSpec, procedure: Procedure, path: Path) -> Scenario:
    """A cooperative customer on `path`: the write calls on it are expected, its final facts
    must be told."""
    return Scenario(
        id=scenario_id(procedure.id, "happy_path"),
        title=f"{procedure.title}: happy path"[:200],
        kind="happy_path",
        procedure=procedure.id,
        customer=brief(procedure, extra=_situation(procedure, path)),
        assertions=ScenarioAssertions(
            expected_tool_calls=tuple(writes(spec, path.steps)),
            must_communicate=_facts(procedure, path),
            expected_outcome=outcome(procedure, path),
            expected_procedure=procedure.id,
        ),
        source=procedure.provenance,
    )


def structural_scenarios(
    spec: AgentSpec, procedure: Procedure, every: list[Path]
) -> list[Scenario]:
    """Checks failing, confirmations declined, handoffs reached."""
    happy = happy_path(procedure, every)
    scenarios: list[Scenario] = []
    for step in procedure.steps:
        if step.kind == "check":
            failing = taking(every, step.id, "no")
            passing = happy if happy.answer(step.id) == "yes" else taking(every, step.id, "yes")
            if failing is None:
                continue
            allowed = writes(spec, failing.steps)
            then = writes(spec, passing.after(step.id) if passing else ())
            forbidden = [call for call in then if call not in allowed]
            ends = outcome(procedure, failing)
            scenarios.append(
                Scenario(
                    id=scenario_id(procedure.id, step.id, "fails"),
                    title=f"{procedure.title}: {step.condition} (no)"[:200],
                    kind="edge_case",
                    procedure=procedure.id,
                    customer=brief(
                        procedure,
                        extra=f'In your case the answer to "{second_person(step.condition or "")}" '
                        "is no.",
                    ),
                    assertions=ScenarioAssertions(
                        forbidden_tool_calls=tuple(forbidden),
                        expected_outcome="refused" if ends == "resolved" and forbidden else ends,
                        expected_procedure=procedure.id,
                    ),
                    source=step.provenance,
                )
            )
        elif step.kind == "confirm":
            declined = taking(every, step.id, "no")
            accepted = taking(every, step.id, "yes")
            confirmed = writes(spec, accepted.after(step.id) if accepted else ())[:1]
            if declined is None:
                continue
            scenarios.append(
                Scenario(
                    id=scenario_id(procedure.id, step.id, "declined"),
                    title=f"{procedure.title}: the customer declines to confirm"[:200],
                    kind="edge_case",
                    procedure=procedure.id,
                    customer=brief(
                        procedure,
                        extra="When the agent asks you to confirm, you change your mind and "
                        "say no.",
                    ),
                    assertions=ScenarioAssertions(
                        forbidden_tool_calls=tuple(confirmed),
                        expected_outcome=outcome(procedure, declined),
                        expected_procedure=procedure.id,
                    ),
                    source=step.provenance,
                )
            )
        elif step.kind == "handoff":
            reaching = ending_at(every, step.id)
            if reaching is None:
                continue
            allowed = writes(spec, reaching.steps)
            scenarios.append(
                Scenario(
                    id=scenario_id(procedure.id, step.id, "handoff"),
                    title=f"{procedure.title}: handed to a human"[:200],
                    kind="edge_case",
                    procedure=procedure.id,
                    customer=brief(procedure, extra=_situation(procedure, reaching)),
                    assertions=ScenarioAssertions(
                        forbidden_tool_calls=tuple(
                            c for c in writes(spec, happy.steps) if c not in allowed
                        ),
                        expected_outcome="escalated",
                        expected_procedure=procedure.id,
                    ),
                    source=step.provenance,
                )
            )
    return scenarios


def _beyond(limit: ArgumentLimit) -> tuple[str, float | int] | None:
    """A value just past a limit and which side it is on ("above" / "below")."""
    if limit.max is not None:
        over = limit.max * 1.5 if limit.max > 0 else limit.max + 100
        return "above", int(over) if float(over).is_integer() else round(over, 2)
    if limit.min is not None:
        under = limit.min / 2 if limit.min > 0 else limit.min - 100
        return "below", int(under) if float(under).is_integer() else round(under, 2)
    return None


def limit_scenarios(spec: AgentSpec, procedure: Procedure) -> list[Scenario]:
    """A customer asking past each limit on a tool the procedure calls (policy limits that
    apply to it, the tool's own limits, the step's): the call with that value is forbidden, and
    the agent escalates when the policy says a human decides, else it refuses."""
    called = {s.tool: s for s in procedure.steps if s.kind == "call_tool" and s.tool}
    found: list[tuple[str, ArgumentLimit, str, Provenance | None]] = []
    for policy in spec.policies:
        if policy.applies_to and procedure.id not in policy.applies_to:
            continue
        found.extend((lim.tool, lim, policy.text, policy.provenance) for lim in policy.limits)
    for name, step in called.items():
        bound = spec.tool(name)
        found.extend((name, lim, "", step.provenance) for lim in (bound.limits if bound else ()))
        found.extend((name, lim, "", step.provenance) for lim in step.limits)
    scenarios: list[Scenario] = []
    for tool, limit, text, provenance in found:
        beyond = _beyond(limit)
        if tool not in called or beyond is None:
            continue
        side, value = beyond
        simple = re.fullmatch(r"[A-Za-z0-9_\-]+", limit.argument) is not None
        wording = limit.argument.replace("_", " ").replace(".", " ")
        forbidden = ToolCallExpectation(tool=tool, arguments={limit.argument: value})
        scenarios.append(
            Scenario(
                id=scenario_id(procedure.id, "limit", tool, limit.argument, side),
                title=f"{procedure.title}: {wording} {side} the limit"[:200],
                kind="edge_case",
                procedure=procedure.id,
                customer=brief(procedure, extra=f"You insist on a {wording} of {value}."),
                assertions=ScenarioAssertions(
                    forbidden_tool_calls=(forbidden,) if simple else (),
                    must_not=()
                    if simple
                    else (f"call {tool} with {limit.argument} {side} the limit ({value})",),
                    expected_outcome="escalated" if _ESCALATION_WORDS.search(text) else "refused",
                    expected_procedure=procedure.id,
                ),
                source=provenance,
            )
        )
    return scenarios
