"""One turn of guided mode: the running procedure's lifecycle (start, slots filled from the
message that started it, steps entered within the turn's bounds, exits recorded as evidence)
and the reply being assembled. The step kinds themselves are in `guided_steps`.

Everything is derived from the turn's starting state and the recorded answers of the model and
the tools, so a turn run again after a crash takes the same path under the same journal keys and
reuses what was recorded (no tool call is made twice)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue

from deputy.domain.spec import OutcomeKind, Procedure, Step
from deputy.llm.errors import ModelError
from deputy.runtime.context import TurnContext
from deputy.runtime.draft import Draft, HandoffRequest
from deputy.runtime.guided_flow import context_slot_ids, escalated_exit, list_slots, prerequisite
from deputy.runtime.guided_flow import shapes as slot_shapes
from deputy.runtime.guided_questions import extract
from deputy.runtime.guided_slots import SlotShape, grounded, read_plainly, validate
from deputy.runtime.guided_templates import render
from deputy.runtime.journal import Entry
from deputy.runtime.state import GuidedState, ProcedureExit
from deputy.tools.results import ToolCallResult

"""Reserved slot of a prerequisite procedure: the procedure (and its prefilled slots) to run
once it ends. It stands in for a `GuidedState` field of its own (slot ids cannot start with
`_`, so it never meets a spec's slot)."""
MAX_STEPS_PER_TURN = 40
MAX_VISITS_PER_TURN = 4
GAVE_UP = (
    "I'm sorry, I could not finish handling this request. Could you tell me again what you need?"
)
ALL_DONE = "Is there anything else I can help you with?"


@dataclass(frozen=True)
class Go:
    """Continue at step `target` of the running procedure (None: past its last step)."""

    target: str | None


Outcome = Go | Draft


def taken_values(slots: dict[str, JsonValue], but: str | None = None) -> set[str]:
    """The texts already given as other slots' values (a value fills one slot only)."""
    taken: set[str] = set()
    for slot_id, value in slots.items():
        if slot_id == but:
            continue
        if isinstance(value, str):
            taken.add(value)
        elif isinstance(value, list):
            taken.update(v for v in value if isinstance(v, str))
    return taken


class GuidedRun:
    """The work of one turn on `ctx.state.guided`."""

    def __init__(self, ctx: TurnContext) -> None:
        self.ctx = ctx
        self.spec = ctx.spec
        self.parts: list[str] = []
        self.where: tuple[str | None, str | None] = (None, None)
        self.failed = False
        self.last_call: ToolCallResult | None = None
        self.previous_call: ToolCallResult | None = None
        """The tool call made by the step just before the current one, if any."""
        self._steps = 0
        self._visits: Counter[tuple[str, str]] = Counter()
        self._lists: dict[str, frozenset[str]] = {}

    # ---- state and keys -----------------------------------------------------------------------

    @property
    def state(self) -> GuidedState:
        return self.ctx.state.guided

    def values(self) -> dict[str, JsonValue]:
        """What templates can refer to: the context, then the procedure's slots."""
        return {**self.ctx.state.context, **self.state.slots}

    def key(self, procedure: Procedure, step: Step, what: str = "") -> str:
        """The journal key of work at this visit of a step (unique within the turn)."""
        visit = self.state.visits.get(step.id, 0)
        base = f"guided/p/{procedure.id}/{step.id}/{visit}"
        return f"{base}/{what}" if what else base

    async def record(self, key: str, event: str, procedure_id: str, **data: Any) -> None:
        payload = {"event": event, "procedure": procedure_id, **data}
        await self.ctx.record(Entry("procedure", key, data=payload))

    async def shapes(self, procedure: Procedure) -> dict[str, SlotShape]:
        if procedure.id not in self._lists:
            self._lists[procedure.id] = await list_slots(self.ctx.tools, procedure)
        return slot_shapes(procedure, self._lists[procedure.id])

    # ---- the reply ----------------------------------------------------------------------------

    def say(self, template: str) -> None:
        """Add a rendered template to the reply (spec-authored, so it counts as grounded)."""
        text = render(template, self.values()).strip()
        if text:
            self.parts.append(text)
            self.ctx.evidence.templates.append(text)

    def say_fixed(self, text: str) -> None:
        """Add one of the runtime's own fixed texts to the reply."""
        self.parts.append(text)
        self.ctx.evidence.templates.append(text)

    def draft(self, **changes: Any) -> Draft:
        text = " ".join(self.parts) or ALL_DONE
        details = {"procedure": self.where[0], "step": self.where[1]}
        return Draft(text=text, failed=self.failed, details=details, **changes)

    def stop(self, procedure: Procedure, step: Step) -> Draft:
        """Stop at `step` (waiting for the customer, or to retry it next turn)."""
        self.state.step_id = step.id
        self.where = (procedure.id, step.id)
        return self.draft()

    # ---- starting ------------------------------------------------------------------------------

    async def start(self, chosen: Procedure) -> None:
        """Start `chosen`, or first the procedure producing what it needs from the context."""
        text = self.ctx.customer_text
        prefilled = await self.prefill(chosen, text)
        producer = prerequisite(self.spec, chosen, self.ctx.state.context)
        if producer is None:
            await self.begin(chosen, prefilled)
            return
        then: dict[str, JsonValue] = {"procedure": chosen.id, "slots": dict(prefilled)}
        await self.begin(producer, await self.prefill(producer, text), then=then)

    async def begin(
        self,
        procedure: Procedure,
        prefilled: dict[str, JsonValue],
        then: dict[str, JsonValue] | None = None,
    ) -> None:
        context = self.ctx.state.context
        slots: dict[str, JsonValue] = {
            s.id: context[s.id]
            for s in procedure.slots
            if s.source == "context" and context.get(s.id) is not None
        }
        slots.update(prefilled)
        self.ctx.state.guided = GuidedState(
            procedure_id=procedure.id, step_id=procedure.steps[0].id, slots=slots, then=then
        )
        await self.record(
            f"guided/p/{procedure.id}/started",
            "started",
            procedure.id,
            prefilled=sorted(prefilled),
            then=then["procedure"] if then else None,
        )

    def names_the_agent(self, value: JsonValue) -> bool:
        """Whether a value is the agent's own name ("Hello, Robin" does not make Robin the
        customer's name)."""
        name = self.ctx.spec.persona.name
        return isinstance(value, str) and value.strip().casefold() == name.strip().casefold()

    async def prefill(self, procedure: Procedure, text: str) -> dict[str, JsonValue]:
        """Customer slots the message that starts `procedure` already gives: read plainly where
        possible, then one question to the model for the rest (values it did not see in the
        message are dropped)."""
        customer = [
            s for s in (await self.shapes(procedure)).values() if s.slot.source != "context"
        ]
        found: dict[str, JsonValue] = {}
        for shape in customer:
            value = validate(shape, read_plainly(shape, text, taken_values(found), answering=False))
            if value is not None:
                found[shape.id] = value
        rest = [s for s in customer if s.id not in found and s.slot.type != "boolean"]
        if not rest or not text.strip():
            return found
        try:
            raw = await extract(self.ctx, f"guided/p/{procedure.id}/extract", rest, text)
        except ModelError:
            return found
        for shape in rest:
            value = validate(shape, raw.get(shape.id))
            taken = taken_values(found)
            if value is None or not grounded(shape, value, text, strict=True):
                continue
            if self.names_the_agent(value):
                continue
            if (isinstance(value, str) and value in taken) or (
                isinstance(value, list) and taken & {v for v in value if isinstance(v, str)}
            ):
                continue
            found[shape.id] = value
        return found

    # ---- stepping ------------------------------------------------------------------------------

    async def enter(self, procedure: Procedure, step: Step, *, resumed: bool) -> bool:
        """Count and record a step taken; False past the turn's bounds."""
        if not resumed:
            self._steps += 1
            self._visits[(procedure.id, step.id)] += 1
            if (
                self._steps > MAX_STEPS_PER_TURN
                or self._visits[(procedure.id, step.id)] > MAX_VISITS_PER_TURN
            ):
                return False
            self.state.visits[step.id] = self.state.visits.get(step.id, 0) + 1
        self.previous_call, self.last_call = self.last_call, None
        await self.record(
            self.key(procedure, step, "resume" if resumed else "enter"),
            "step",
            procedure.id,
            step=step.id,
            kind=step.kind,
            visit=self.state.visits.get(step.id, 0),
            resumed=resumed,
        )
        return True

    # ---- ending --------------------------------------------------------------------------------

    async def close(
        self, procedure: Procedure, step: Step | None, exit_id: str | None, outcome: OutcomeKind
    ) -> dict[str, JsonValue] | None:
        """Record the procedure's exit, carry its context values on, clear the guided state.
        Returns what was to run after it (`GuidedState.then`)."""
        state = self.state
        self.ctx.state.completed.append(
            ProcedureExit(
                procedure_id=procedure.id,
                exit_id=exit_id,
                outcome=outcome,
                turn=self.ctx.state.turn,
                tool_call_ids=list(state.tool_call_ids),
            )
        )
        shared = context_slot_ids(self.spec)
        for slot_id, value in state.slots.items():
            if slot_id in shared and value is not None:
                self.ctx.state.context[slot_id] = value
        self.where = (procedure.id, step.id if step else None)
        then = state.then
        self.ctx.state.guided = GuidedState()
        await self.record(
            f"guided/p/{procedure.id}/exited",
            "exited",
            procedure.id,
            step=step.id if step else None,
            exit=exit_id,
            outcome=outcome,
        )
        return then

    async def finish(
        self, procedure: Procedure, step: Step | None, exit_id: str | None, outcome: OutcomeKind
    ) -> Outcome:
        """End the procedure; go on with the procedure it was a prerequisite of, if any."""
        then = await self.close(procedure, step, exit_id, outcome)
        if outcome == "resolved" and isinstance(then, dict):
            chosen = self.spec.procedure(str(then.get("procedure")))
            slots = then.get("slots")
            if (
                chosen is not None
                and isinstance(slots, dict)
                and prerequisite(self.spec, chosen, self.ctx.state.context) is None
            ):
                await self.begin(chosen, slots)
                return Go(chosen.steps[0].id)
        return self.draft()

    async def escalate(
        self,
        procedure: Procedure,
        step: Step,
        reason: str,
        *,
        queue: str | None = None,
        summary: str | None = None,
    ) -> Draft:
        """Hand the conversation to a human, ending the procedure with its escalated exit."""
        exit_ = escalated_exit(procedure)
        await self.close(procedure, step, exit_.id if exit_ else None, "escalated")
        if not self.parts:
            self.say_fixed(self.spec.escalation.message)
        handoff = HandoffRequest(
            trigger="procedure",
            reason=reason,
            queue=queue or self.spec.escalation.default_queue,
            summary=summary,
        )
        return self.draft(handoff=handoff)

    async def abandon(self, procedure: Procedure, step: Step, reason: str, reply: str) -> Draft:
        """Give the procedure up (a failed call, a loop past the turn's bounds): the guided
        state is cleared, the turn is failed and the reply is `reply`, a fixed text."""
        await self.record(
            f"guided/p/{procedure.id}/failed", "failed", procedure.id, step=step.id, reason=reason
        )
        self.ctx.state.guided = GuidedState()
        self.where = (procedure.id, step.id)
        self.say_fixed(reply)
        self.failed = True
        return self.draft()
