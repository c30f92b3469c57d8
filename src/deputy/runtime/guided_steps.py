"""The step kinds of a procedure, run by guided mode: each takes the step (resumed when the
customer is answering it) and says where to go next or stops the turn with a draft."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from pydantic import JsonValue

from deputy.domain.spec import Procedure, Step
from deputy.llm.errors import ModelError
from deputy.runtime.answers import read_confirmation
from deputy.runtime.draft import Draft, EndRequest
from deputy.runtime.guided_conditions import decide_plainly
from deputy.runtime.guided_flow import call_after, continuation, exit_of
from deputy.runtime.guided_questions import decide, extract
from deputy.runtime.guided_run import Go, GuidedRun, Outcome, taken_values
from deputy.runtime.guided_slots import SlotShape, grounded, read_plainly, validate
from deputy.runtime.guided_templates import fields, render, render_arguments
from deputy.runtime.state import ConfirmationRecord
from deputy.tools.builtins import HandoffSignal, Signal
from deputy.tools.confirmation import Confirmation

CLEAR_YES_NO = "Sorry, I need a clear yes or no."
CHECK_FAILED = "I'm sorry, I could not check that just now. Could you send your message again?"
CALL_FAILED = "I'm sorry, I could not complete this request"

Handler = Callable[[GuidedRun, Procedure, Step, bool], Awaitable[Outcome]]


def _needed(shape: SlotShape) -> str:
    """What a re-ask says is missing: the enum's values, the description when it is a noun
    phrase ("The order id, like …"), else the slot's name."""
    slot = shape.slot
    if slot.type == "enum":
        return "one of: " + ", ".join(f"'{v}'" for v in slot.values)
    label = slot.description.strip().rstrip(".")
    if label.split(" ", 1)[0].lower() in ("the", "a", "an", "your"):
        return label[0].lower() + label[1:]
    return "the " + shape.id.replace("_", " ")


async def _answer(run: GuidedRun, procedure: Procedure, step: Step, shape: SlotShape) -> JsonValue:
    """The slot's value in the customer's answer, or None."""
    text = run.ctx.customer_text
    taken = taken_values(run.state.slots, but=shape.id)
    value = validate(shape, read_plainly(shape, text, taken, answering=True))
    if value is not None:
        return value
    question = render(step.text, run.values())
    try:
        raw = await extract(
            run.ctx, run.key(procedure, step, "extract"), [shape], text, question=question
        )
    except ModelError:
        run.failed = True
        return None
    value = validate(shape, raw.get(shape.id))
    if value is None or run.names_the_agent(value):
        return None
    return value if grounded(shape, value, text, strict=False) else None


async def ask(run: GuidedRun, procedure: Procedure, step: Step, resumed: bool) -> Outcome:
    assert step.slot is not None
    shape = (await run.shapes(procedure))[step.slot]
    state = run.state
    if resumed:
        value = await _answer(run, procedure, step, shape)
        if value is not None:
            state.slots[shape.id] = value
            state.awaiting = None
            return Go(continuation(procedure, step))
        run.say_fixed(f"Sorry, I need {_needed(shape)}.")
        run.say(step.text)
        state.awaiting = "answer"
        return run.stop(procedure, step)
    known = run.ctx.state.context.get(shape.id) if shape.slot.source == "context" else None
    if known is not None:
        state.slots[shape.id] = known
        return Go(continuation(procedure, step))
    if state.slots.get(shape.id) is not None and state.visits.get(step.id, 0) <= 1:
        return Go(continuation(procedure, step))  # given earlier; a loop back asks again
    run.say(step.text)
    state.awaiting = "answer"
    return run.stop(procedure, step)


async def _signalled(run: GuidedRun, procedure: Procedure, step: Step, signal: Signal) -> Draft:
    if isinstance(signal, HandoffSignal):
        return await run.escalate(
            procedure, step, signal.reason, queue=signal.queue, summary=signal.summary
        )
    await run.close(procedure, step, None, signal.outcome)
    return run.draft(end=EndRequest(outcome=signal.outcome, summary=signal.summary))


async def call_tool(run: GuidedRun, procedure: Procedure, step: Step, resumed: bool) -> Outcome:
    assert step.tool is not None
    state = run.state
    arguments = render_arguments(step.arguments, run.values())
    result = await run.ctx.call_tool(
        run.key(procedure, step),
        step.tool,
        arguments,
        procedure_id=procedure.id,
        step_limits=step.limits,
    )
    run.last_call = result
    following = continuation(procedure, step)
    if result.ok:
        if result.call_id and result.call_id not in state.tool_call_ids:
            state.tool_call_ids.append(result.call_id)
        if step.save_as:
            state.slots[step.save_as] = json.loads(json.dumps(result.output, default=str))
        if result.signal is not None:
            return await _signalled(run, procedure, step, result.signal)
        return Go(following)
    if step.save_as:
        state.slots.pop(step.save_as, None)
    if result.status == "outcome_unknown":
        return await run.escalate(procedure, step, result.message)
    after = procedure.step(following) if following else None
    if after is not None and after.kind == "check":
        return Go(after.id)  # the check decides (it sees the failed call)
    reason = result.message or f"{step.tool} {result.status}"
    return await run.abandon(procedure, step, reason, f"{CALL_FAILED}: {reason}")


def _check_data(run: GuidedRun, procedure: Procedure, step: Step) -> dict[str, JsonValue]:
    """Only what the condition needs: the slots it names, what earlier tool calls saved, the
    status of the call just made; every customer slot when it names none."""
    values = run.values()
    named = fields(step.condition or "")
    data: dict[str, JsonValue] = {name: values.get(name) for name in named}
    for saved in (s.save_as for s in procedure.steps if s.kind == "call_tool" and s.save_as):
        if values.get(saved) is not None:
            data[saved] = values[saved]
    if not named:
        for slot in procedure.slots:
            if slot.source != "context":
                data.setdefault(slot.id, values.get(slot.id))
    if run.previous_call is not None:
        data["tool_call"] = {"tool": run.previous_call.tool, "status": run.previous_call.status}
    return data


async def check(run: GuidedRun, procedure: Procedure, step: Step, resumed: bool) -> Outcome:
    previous = run.previous_call
    data = _check_data(run, procedure, step)
    template = step.condition or ""
    holds: bool | None = False
    by = "tool_status"
    if previous is None or previous.ok:
        by = "rules"
        holds = decide_plainly(
            template,
            data=data,
            values=run.values(),
            shapes=await run.shapes(procedure),
            previous=previous,
        )
    if holds is None:
        by = "model"
        condition = render(template, run.values())
        try:
            holds = await decide(run.ctx, run.key(procedure, step, "check"), condition, data)
        except ModelError:
            run.failed = True
            run.say_fixed(CHECK_FAILED)
            return run.stop(procedure, step)  # entered again (a new visit) next turn
    await run.record(
        run.key(procedure, step, "decided"), "check", procedure.id, step=step.id, holds=holds, by=by
    )
    if holds:
        return Go(step.then)
    return Go(step.otherwise or continuation(procedure, step))


async def confirm(run: GuidedRun, procedure: Procedure, step: Step, resumed: bool) -> Outcome:
    state = run.state
    if not resumed:
        run.say(step.text)
        state.awaiting = "confirmation"
        return run.stop(procedure, step)
    ctx = run.ctx
    question = render(step.text, run.values())
    answer = await read_confirmation(
        ctx, run.key(procedure, step, "confirm"), question, ctx.customer_text
    )
    if answer == "unclear":
        run.say_fixed(CLEAR_YES_NO)
        run.say(step.text)
        return run.stop(procedure, step)
    state.awaiting = None
    if answer == "no":
        return Go(step.on_decline)
    call = call_after(procedure, step)
    if call is not None and call.tool is not None:
        arguments = render_arguments(call.arguments, run.values())
        confirmed = Confirmation.for_call(call.tool, arguments, ctx.inbound_message_id)
        record = ConfirmationRecord.of(confirmed)
        if record not in ctx.state.confirmations:
            ctx.state.confirmations.append(record)
    return Go(continuation(procedure, step))


async def say(run: GuidedRun, procedure: Procedure, step: Step, resumed: bool) -> Outcome:
    run.say(step.text)
    return Go(continuation(procedure, step))


async def end(run: GuidedRun, procedure: Procedure, step: Step, resumed: bool) -> Outcome:
    run.say(step.text)
    exit_ = exit_of(procedure, step.exit)
    return await run.finish(procedure, step, step.exit, exit_.outcome if exit_ else "resolved")


async def handoff(run: GuidedRun, procedure: Procedure, step: Step, resumed: bool) -> Outcome:
    run.say(step.text)
    reason = f"The procedure {procedure.id!r} hands the conversation over at step {step.id!r}."
    return await run.escalate(procedure, step, reason, queue=step.queue)


HANDLERS: dict[str, Handler] = {
    "ask": ask,
    "call_tool": call_tool,
    "check": check,
    "confirm": confirm,
    "say": say,
    "end": end,
    "handoff": handoff,
}
