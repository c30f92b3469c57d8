"""Put the extracted parts together into one valid AgentSpec draft: tools bound (or given a
placeholder binding the report asks about), knowledge sources, suggested guardrail preset and
channels, outcome definitions, and ids made unique across everything merged."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from deputy.builder.rules import unique_id
from deputy.builder.sources import SourceDocument, ToolDescription, Transcript
from deputy.domain.spec import (
    AgentSpec,
    Channels,
    ChatChannel,
    Escalation,
    EscalationRule,
    Guardrails,
    HTTPBinding,
    Knowledge,
    KnowledgeSource,
    Outcomes,
    Persona,
    Policy,
    Procedure,
    Tool,
    VoiceChannel,
)
from deputy.domain.spec.operations import EmailChannel

UNBOUND_URL = "https://unbound.invalid/tools/{name}"
"""Where a tool known only from a description is bound until a tool source is registered: the
`.invalid` domain never resolves, so a draft cannot call anything by accident."""

_REGULATED = re.compile(
    r"\b(hipaa|pci|patients?|diagnos\w*|prescriptions?|medical|loans?|mortgages?|insurance|"
    r"brokerage|investments?|securities|credit report)\b",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"\b(e-?mail (us|reply|support)|inbox|subject line)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Suggestions:
    guardrails: Guardrails
    channels: Channels
    notes: tuple[str, ...]


def _claim(base: str, taken: set[str]) -> str:
    """A unique id from `base` (see `unique_id`), added to `taken`."""
    chosen = unique_id(base, taken)
    taken.add(chosen)
    return chosen


def spec_tool(tool: ToolDescription) -> Tool:
    if tool.binding is not None:
        return Tool(
            name=tool.name,
            description=tool.description[:2000],
            effect=tool.effect,
            binding=tool.binding,
        )
    return Tool(
        name=tool.name,
        description=tool.description[:2000],
        effect=tool.effect,
        binding=HTTPBinding(method="POST", url=UNBOUND_URL.format(name=tool.name)),
        parameters=dict(tool.parameters) or None,
    )


def suggest(
    documents: Sequence[SourceDocument],
    transcripts: Sequence[Transcript],
    *,
    goal: str,
    recordings: int,
) -> Suggestions:
    """A guardrail preset and channels from what the material talks about; each choice is
    explained in `notes` for the reviewer."""
    text = " ".join([goal, *(d.document.text for d in documents)])
    regulated = sorted({m.group(0).lower() for m in _REGULATED.finditer(text)})
    notes: list[str] = []
    if regulated:
        preset = "regulated"
        notes.append(
            "guardrails: preset 'regulated' (the material mentions "
            f"{', '.join(regulated[:5])}); this also runs the agent in guided mode"
        )
    else:
        preset = "standard"
        notes.append("guardrails: preset 'standard' (no regulated domain found in the material)")
    email = bool(_EMAIL.search(text))
    voice = recordings > 0
    channels = Channels(
        chat=ChatChannel(enabled=True),
        email=EmailChannel(enabled=email),
        voice=VoiceChannel(enabled=voice),
    )
    notes.append(
        "channels: chat"
        + (", email (the material describes email support)" if email else "")
        + (", voice (recordings of calls were provided)" if voice else "")
    )
    del transcripts  # chat is the default for text transcripts; kept for future signals
    return Suggestions(Guardrails(preset=preset), channels, tuple(notes))


def agent_name(goal: str, name: str | None) -> str:
    if name:
        return name.strip()[:120]
    words = goal.strip().split()
    short = " ".join(words[:8])
    return (short if len(words) <= 8 else f"{short}…")[:120] or "Agent"


def assemble(
    *,
    name: str,
    goal: str,
    procedures: Iterable[Procedure],
    policies: Iterable[Policy],
    escalation_rules: Iterable[EscalationRule],
    tools: Sequence[ToolDescription],
    knowledge: Sequence[KnowledgeSource],
    suggestions: Suggestions,
) -> AgentSpec:
    """The draft; ids of procedures, policies and escalation rules are made unique (a later
    duplicate gets a suffix) and procedures that reference missing tools keep them: the linter
    reports those to the reviewer."""
    procedure_ids: set[str] = set()
    policy_ids: set[str] = set()
    rule_ids: set[str] = set()
    unique_procedures = [
        p.model_copy(update={"id": _claim(p.id, procedure_ids)}) for p in procedures
    ]
    unique_policies = [p.model_copy(update={"id": _claim(p.id, policy_ids)}) for p in policies]
    rules = [r.model_copy(update={"id": _claim(r.id, rule_ids)}) for r in escalation_rules]
    return AgentSpec(
        name=name,
        goal=goal[:4000],
        persona=Persona(description=f"A support agent whose goal is: {goal}"[:2000]),
        procedures=tuple(unique_procedures),
        policies=tuple(unique_policies),
        tools=tuple(spec_tool(tool) for tool in tools),
        knowledge=Knowledge(sources=tuple(knowledge)),
        guardrails=suggestions.guardrails,
        channels=suggestions.channels,
        escalation=Escalation(rules=tuple(rules)),
        outcomes=Outcomes(
            resolved=f"The customer's request was completed or fully answered ({goal})"[:2000]
        ),
    )
