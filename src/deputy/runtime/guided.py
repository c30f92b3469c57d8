"""Guided mode: the spec's procedures executed as state machines.

The customer's message either answers the step the running procedure waits on, or (with no
procedure running) is routed to a procedure (or along one of the spec's routes to another agent)
by one constrained question, or answered from the agent's knowledge when none applies. The
engine then takes steps until it needs the customer again (`ask`, `confirm`) or the procedure
ends (`end`, `handoff`). The model only answers constrained questions (route, extract slots,
decide a check, translate); what the customer reads comes from the procedure's templates and
retrieved passages.

Module map: `guided_run` (a turn's lifecycle), `guided_steps` (the step kinds), `guided_flow`
(spec navigation), `guided_slots` (slot values), `guided_conditions` (checks decided without
the model), `guided_questions` (the model questions), `guided_templates` (rendering),
`guided_knowledge` (the no-procedure answer)."""

from __future__ import annotations

from dataclasses import replace

from deputy.domain.spec import AgentRoute
from deputy.llm.errors import ModelError
from deputy.runtime.context import TurnContext
from deputy.runtime.draft import Draft, TransferRequest
from deputy.runtime.guided_knowledge import knowledge_reply
from deputy.runtime.guided_questions import choose_procedure, translate
from deputy.runtime.guided_run import GAVE_UP, Go, GuidedRun
from deputy.runtime.guided_steps import HANDLERS
from deputy.runtime.reasoning_tools import transfer_reply
from deputy.runtime.state import GuidedState

ROUTE_KEY = "guided/route"
TRANSLATE_KEY = "guided/translate"


async def run_guided(ctx: TurnContext) -> Draft:
    """Advance the conversation's procedure with the customer's latest message and draft the
    reply (in the customer's language)."""
    draft = await _reply(GuidedRun(ctx))
    return await _localised(ctx, draft)


async def _reply(run: GuidedRun) -> Draft:
    ctx = run.ctx
    running = ctx.state.guided.procedure_id
    if running is not None and ctx.spec.procedure(running) is None:
        ctx.state.guided = GuidedState()  # the spec no longer has it (a new version)
    if ctx.state.guided.procedure_id is None:
        if not ctx.spec.procedures and not ctx.spec.routes:
            return await knowledge_reply(ctx)
        try:
            chosen = await choose_procedure(ctx, ROUTE_KEY)
        except ModelError:
            return await knowledge_reply(ctx, failed=True)
        if chosen is None:
            return await knowledge_reply(ctx)
        if isinstance(chosen, AgentRoute):
            transfer = TransferRequest(chosen.id, chosen.agent, chosen.when.strip()[:1000])
            details = {"mode": "guided", "route": chosen.id}
            return Draft(transfer_reply(ctx.spec, chosen.id), transfer=transfer, details=details)
        await run.start(chosen)
    return await _advance(run)


async def _advance(run: GuidedRun) -> Draft:
    """Take steps until one stops the turn."""
    resumed = run.state.awaiting is not None
    while True:
        procedure = run.spec.procedure(run.state.procedure_id or "")
        if procedure is None:  # a procedure ended and nothing follows it
            return run.draft()
        step = procedure.step(run.state.step_id) if run.state.step_id else None
        if step is None:  # past the last step, or a target the procedure does not have
            outcome = await run.finish(procedure, None, None, "resolved")
        elif not await run.enter(procedure, step, resumed=resumed):
            run.parts.clear()
            limit = "the step limit of one turn"
            return await run.abandon(procedure, step, limit, GAVE_UP)
        else:
            outcome = await HANDLERS[step.kind](run, procedure, step, resumed)
        resumed = False
        if not isinstance(outcome, Go):
            return outcome
        run.state.awaiting = None  # whatever was awaited has been dealt with
        if run.state.procedure_id == procedure.id:
            run.state.step_id = outcome.target


async def _localised(ctx: TurnContext, draft: Draft) -> Draft:
    """The draft in the customer's language when it is not the spec's default one."""
    language = ctx.state.language
    default = ctx.spec.languages[0]
    if not language or language.split("-")[0] == default.split("-")[0] or not draft.text:
        return draft
    try:
        text = await translate(ctx, TRANSLATE_KEY, draft.text, language)
    except ModelError:
        return draft
    return replace(draft, text=text)
