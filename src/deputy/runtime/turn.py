"""One turn of a conversation, end to end: the customer's message through the input guardrails,
explicit requests for a human, the customer's language, the mode engine (reasoning or guided),
escalation on repeated failure or model outage, the output guardrails, and the reply.

Guardrails run in series: the engine only runs once the input check let the message through,
and the reply leaves (is recorded and streamed) only after the output check approved it. Every
step is recorded in the turn's journal under a fixed key, so a turn run again after a crash
resumes where it was instead of starting over."""

from __future__ import annotations

import re
from dataclasses import dataclass

from deputy.domain.spec import AgentSpec
from deputy.guardrails import GuardrailReport, InputGuard, OutputGuard, resolve_guardrails
from deputy.llm.errors import ModelError, ModelUnavailable
from deputy.llm.language import LanguageDetector
from deputy.llm.types import Model, Usage
from deputy.runtime.answers import wants_human
from deputy.runtime.context import TurnContext, TurnInput
from deputy.runtime.draft import Draft, EndRequest, HandoffRequest, TransferRequest
from deputy.runtime.escalation import matching_rule
from deputy.runtime.journal import Entry, RecordedEntry, TurnJournal
from deputy.runtime.ports import EventSink, NoKnowledge, NullSink, Retriever, ToolRunner
from deputy.runtime.state import AgentState

BLOCKED_INPUT_REPLY = (
    "I can't act on that message. Please tell me in your own words what you need help with."
)
BLOCKED_REPLY = "I'm sorry, I can't share that. Is there anything else I can help you with?"
OUTAGE_REPLY = "I'm sorry, I can't answer right now. Please try again in a few minutes."
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class TurnResult:
    reply: RecordedEntry
    state: AgentState
    handoff: HandoffRequest | None
    end: EndRequest | None
    failed: bool
    usage: Usage
    transfer: TransferRequest | None = None
    """Another agent takes the conversation over (never together with a handoff)."""


def _report(entry: RecordedEntry | None) -> GuardrailReport | None:
    return GuardrailReport.model_validate(entry.data) if entry is not None else None


_LANGUAGE_ALIASES = {"nb": "no", "iw": "he", "in": "id", "ji": "yi", "jw": "jv", "fil": "tl"}
"""Primary language subtags the detector reports under another code (fastText's labels):
Norwegian Bokmål is `no`, the deprecated Hebrew and Indonesian tags are `he` and `id`."""
RELATIVE_FLOOR = 0.15
"""The least score a spec language needs, when the text is clearly in a language the spec does
not offer, to be taken as the close relative it was confused with."""
_detector = LanguageDetector()


def _base(tag: str) -> str:
    base = tag.split("-")[0].lower()
    return _LANGUAGE_ALIASES.get(base, base)


def _language(spec: AgentSpec, text: str, current: str | None) -> str | None:
    """The spec language the customer writes in; the current one when unsure. The detector's
    best guess counts when it is confident; when that guess is a language the spec does not
    offer, a spec language among its next candidates with at least `RELATIVE_FLOOR` is taken
    instead (the lite model reads Norwegian as Danish, Slovak as Czech, Bulgarian and
    Ukrainian as Russian, with the right language second)."""
    if len(spec.languages) == 1:
        return spec.languages[0]
    allowed: dict[str, str] = {}
    for tag in spec.languages:
        allowed.setdefault(_base(tag), tag)
    guesses = _detector.candidates(text, k=3)
    if guesses and guesses[0].confidence >= _detector.threshold:
        for rank, guess in enumerate(guesses):
            if guess.code in allowed and (rank == 0 or guess.confidence >= RELATIVE_FLOOR):
                return allowed[guess.code]
    return current or spec.languages[0]


def reply_pieces(text: str) -> list[str]:
    """The reply in sentence-sized pieces, for streaming; joined they give the text back."""
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


class AgentRuntime:
    """Runs the turns of one agent version. `guard_model` answers the guardrails' model checks
    (None: heuristics only, which `regulated` treats as a failed check)."""

    def __init__(
        self,
        spec: AgentSpec,
        *,
        model: Model,
        tools: ToolRunner,
        retriever: Retriever | None = None,
        guard_model: Model | None = None,
    ) -> None:
        self.spec = spec
        self.model = model
        self.tools = tools
        self.retriever = retriever or NoKnowledge()
        settings = resolve_guardrails(spec)
        self.input_guard = InputGuard(settings, guard_model)
        self.output_guard = OutputGuard(settings, guard_model)

    @property
    def greeting(self) -> str | None:
        return self.spec.channels.chat.greeting or None

    async def run_turn(
        self, turn: TurnInput, journal: TurnJournal, sink: EventSink | None = None
    ) -> TurnResult:
        ctx = TurnContext(
            turn,
            model=self.model,
            tools=self.tools,
            retriever=self.retriever,
            journal=journal,
            input_guard=self.input_guard,
            sink=sink or NullSink(),
        )
        ctx.state.turn = turn.state.turn + 1
        draft = await self._decide(ctx)
        return await self._deliver(ctx, draft)

    # ---- deciding -----------------------------------------------------------------------------

    async def _decide(self, ctx: TurnContext) -> Draft:
        spec = self.spec
        escalation = spec.escalation
        report = _report(ctx.journal.recorded("guard/input"))
        if report is None:
            report = await self.input_guard.check(ctx.customer_text)
            await ctx.record_guardrail("guard/input", report)
        if report.escalated:
            return self._handoff("guardrail", "; ".join(report.reasons()) or "input guardrail")
        if report.blocked:
            return Draft(BLOCKED_INPUT_REPLY, failed=True, details={"guardrail": "input"})
        if escalation.on_customer_request and wants_human(ctx.customer_text):
            return self._handoff("customer_request", "the customer asked for a person")
        ctx.state.language = _language(spec, ctx.customer_text, ctx.state.language)
        try:
            from deputy.runtime.guided import run_guided
            from deputy.runtime.reasoning import run_reasoning

            if spec.runtime_mode == "guided":
                rule = await matching_rule(ctx)
                if rule is not None:
                    return self._handoff("rule", rule.when, queue=rule.queue, rule_id=rule.id)
                return await run_guided(ctx)
            return await run_reasoning(ctx)
        except ModelUnavailable as outage:
            if escalation.on_model_outage:
                return self._handoff("model_outage", f"the model is unavailable: {outage}")
            return Draft(OUTAGE_REPLY, failed=True, details={"error": "model_unavailable"})
        except ModelError as error:
            return Draft(OUTAGE_REPLY, failed=True, details={"error": error.code})

    def _handoff(
        self,
        trigger: str,
        reason: str,
        *,
        queue: str | None = None,
        rule_id: str | None = None,
    ) -> Draft:
        escalation = self.spec.escalation
        request = HandoffRequest(
            trigger=trigger,  # type: ignore[arg-type]
            reason=reason[:1000],
            queue=queue or escalation.default_queue,
            rule_id=rule_id,
        )
        return Draft(escalation.message, handoff=request)

    # ---- delivering ---------------------------------------------------------------------------

    async def _deliver(self, ctx: TurnContext, draft: Draft) -> TurnResult:
        report = _report(ctx.journal.recorded("guard/output"))
        if report is None:
            customer = [ctx.turn.inbound.text] + [
                e.text for e in ctx.turn.history if e.kind == "customer_message"
            ]
            report = await self.output_guard.check(
                draft.text,
                ctx.evidence.for_guard(customer),
                policies=self.spec.policies,
            )
            await ctx.record_guardrail("guard/output", report)
        text, stored = report.text, report.stored_text
        failed = draft.failed
        handoff = draft.handoff
        if report.escalated and handoff is None:
            handoff = self._handoff("guardrail", "; ".join(report.reasons())).handoff
            text = stored = self.spec.escalation.message
        elif report.blocked:
            text = stored = BLOCKED_REPLY
            failed = True
        state = ctx.state
        state.failed_turns = state.failed_turns + 1 if failed else 0
        limit = self.spec.escalation.after_failed_turns
        if handoff is None and state.failed_turns >= limit:
            handoff = self._handoff(
                "repeated_failure", f"{state.failed_turns} turns in a row did not succeed"
            ).handoff
            message = self.spec.escalation.message
            text, stored = f"{text}\n\n{message}", f"{stored}\n\n{message}"
        reply = ctx.journal.recorded("reply")
        if reply is None:
            for piece in reply_pieces(text):
                await ctx.sink.reply_delta(piece)
            reply = await ctx.record(
                Entry(
                    "agent_message",
                    "reply",
                    text=stored,
                    data={
                        "citations": list(draft.citations),
                        "language": state.language,
                        "guardrail": report.action,
                        **draft.details,
                    },
                )
            )
        if handoff is not None:
            state.failed_turns = 0
            await ctx.record(
                Entry(
                    "handoff",
                    "handoff",
                    data={
                        "trigger": handoff.trigger,
                        "reason": handoff.reason,
                        "queue": handoff.queue,
                        "rule_id": handoff.rule_id,
                        "summary": handoff.summary,
                    },
                )
            )
        return TurnResult(
            reply=reply,
            state=state,
            handoff=handoff,
            end=draft.end if handoff is None else None,
            failed=failed,
            usage=ctx.usage,
            transfer=draft.transfer if handoff is None and not report.blocked else None,
        )
