"""Production conversations as the improvement loop reads them, and what their lines say.

A `ProductionConversation` is a conversation the agent had with a real customer, its transcript
in the sandbox's line format (`TranscriptMessage`): customer and agent lines, tool lines with
`ok`, and event lines for what the runtime did. `transcript_from_entries` turns the runtime's
journal entries (`deputy.runtime.journal.RecordedEntry`, or the API's `TranscriptEntry`) into
those lines; the readers below recognise both its event lines and the sandbox's:

- a handoff: an event whose `data["kind"]` is "handoff", or with a `trigger` (the sandbox's
  form), or whose text starts with "handed off";
- a guardrail that stopped a turn: an event whose `data["action"]` is "block" or "escalate";
- a procedure that ran: an event whose `data["procedure"]` names it;
- a failed turn: an event whose `data["kind"]` is "turn_failed", or an agent line whose data
  carries an `error`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import JsonValue

from deputy.domain.sandbox_results import TranscriptMessage

NEEDED_HANDOFF_TRIGGERS = frozenset({"rule", "procedure", "customer_request"})
"""Handoffs the spec or the customer asked for: an escalation rule, a procedure's handoff step,
the customer's own request. Any other handoff (the agent gave up, repeated failures, a model
outage, a guardrail) is an escalation the agent should not have needed."""

_STOPPING = frozenset({"block", "escalate"})
_CANNOT_HELP = re.compile(
    r"\b(?:i\s+(?:can|could)\s+only\s+(?:help|assist|handle|process|deal)"
    r"|i(?:'m|\s+am)\s+only\s+able\s+to\s+(?:help|assist|handle|process)"
    r"|i(?:'m|\s+am)\s+(?:not\s+able|unable)\s+to\s+(?:help|assist|handle|process|do)"
    r"|i\s+(?:can't|cannot|can\s+not)\s+(?:help|assist|handle|process|do)"
    r"|not\s+something\s+i\s+can\s+(?:help|assist|handle|do))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ProductionConversation:
    """One real conversation: which version answered it, where, how it ended, its transcript
    and any explicit feedback the customer gave (ratings or comments)."""

    id: str
    agent_version: int
    channel: str
    status: str  # active | queued | human | closed
    outcome: str | None  # resolved | escalated | abandoned | None
    created_at: datetime
    transcript: tuple[TranscriptMessage, ...]
    feedback: tuple[str, ...] = ()


class JournalEntry(Protocol):
    """What `transcript_from_entries` reads of an entry."""

    @property
    def kind(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def data(self) -> Mapping[str, Any]: ...


def transcript_from_entries(entries: Iterable[JournalEntry]) -> tuple[TranscriptMessage, ...]:
    """The transcript lines of a conversation's journal entries, in their order. Each customer
    message starts a turn; model steps and retrievals are left out (they are the agent's
    thinking, not what happened); a guardrail entry that allowed everything is left out."""
    lines: list[TranscriptMessage] = []
    turn = 0
    for entry in entries:
        data = dict(entry.data)
        if entry.kind == "customer_message":
            turn += 1
            lines.append(TranscriptMessage(role="customer", turn=turn, text=entry.text))
        elif entry.kind == "agent_message":
            error = data.get("error")
            extra: dict[str, JsonValue] = {"error": str(error)} if error else {}
            lines.append(TranscriptMessage(role="agent", turn=turn, text=entry.text, data=extra))
        elif entry.kind == "tool_call":
            lines.append(_tool_line(turn, data))
        elif (event := _event_line(turn, entry.kind, entry.text, data)) is not None:
            lines.append(event)
    return tuple(lines)


def _tool_line(turn: int, data: Mapping[str, Any]) -> TranscriptMessage:
    arguments = data.get("arguments")
    return TranscriptMessage(
        role="tool",
        turn=turn,
        text=str(data.get("message") or ""),
        tool=str(data.get("tool") or "?"),
        arguments=_json_dict(arguments) if isinstance(arguments, dict) else {},
        ok=data.get("status") == "succeeded",
        data={"code": str(data.get("code") or data.get("status") or "")},
    )


def _event_line(
    turn: int, kind: str, text: str, data: Mapping[str, Any]
) -> TranscriptMessage | None:
    said: str
    kept: dict[str, JsonValue] = {"kind": kind}
    if kind == "guardrail":
        action, stage = data.get("action"), data.get("stage")
        if action not in _STOPPING:
            return None
        said = f"guardrail {stage}: {action}"
        kept |= {"stage": str(stage), "action": str(action)}
    elif kind == "handoff":
        said = f"handed off to a human: {data.get('reason') or ''}".strip()
        kept |= {"trigger": str(data.get("trigger") or ""), "reason": str(data.get("reason") or "")}
    elif kind == "procedure" and isinstance(data.get("procedure"), str):
        event = str(data.get("event") or "")
        said = f"procedure {data['procedure']}: {event}".strip()
        kept |= {"procedure": data["procedure"], "event": event}
        if isinstance(data.get("outcome"), str):
            kept["outcome"] = data["outcome"]
    elif kind == "turn_failed":
        said = f"the turn failed: {data.get('error') or ''}".strip()
        kept["error"] = str(data.get("error") or "")
    elif kind == "human_message":
        said = f"human agent: {text}"
    elif kind == "outcome":
        said = f"outcome: {data.get('outcome')}"
        kept["outcome"] = str(data.get("outcome"))
    elif kind == "agent_switch":
        said = "passed to another agent"
    else:
        return None
    return TranscriptMessage(role="event", turn=turn, text=said, data=kept)


def _json_dict(value: Mapping[str, Any]) -> dict[str, JsonValue]:
    return {str(key): _json(item) for key, item in value.items()}


def _json(value: Any) -> JsonValue:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return _json_dict(value)
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    return str(value)


# ---- reading lines ------------------------------------------------------------------------------


def customer_messages(conversation: ProductionConversation) -> list[str]:
    """What the customer wrote, in order (empty messages left out)."""
    return [
        line.text.strip()
        for line in conversation.transcript
        if line.role == "customer" and line.text.strip()
    ]


def is_handoff(line: TranscriptMessage) -> bool:
    if line.role != "event":
        return False
    return (
        line.data.get("kind") == "handoff"
        or "trigger" in line.data
        or line.text.lower().startswith("handed off")
    )


def handoff_triggers(conversation: ProductionConversation) -> list[str]:
    """The trigger of each handoff in the transcript ("" when the line does not say)."""
    return [
        str(line.data.get("trigger") or "") for line in conversation.transcript if is_handoff(line)
    ]


def is_guardrail_stop(line: TranscriptMessage) -> bool:
    return line.role == "event" and line.data.get("action") in _STOPPING


def is_failed_turn(line: TranscriptMessage) -> bool:
    if line.role == "event":
        return line.data.get("kind") == "turn_failed"
    return line.role == "agent" and bool(line.data.get("error"))


def procedures_run(conversation: ProductionConversation) -> list[str]:
    """The procedures the runtime recorded working on, in first-seen order."""
    seen: dict[str, None] = {}
    for line in conversation.transcript:
        procedure = line.data.get("procedure") if line.role == "event" else None
        if isinstance(procedure, str) and procedure:
            seen.setdefault(procedure, None)
    return list(seen)


def says_cannot_help(conversation: ProductionConversation) -> bool:
    """Whether the agent said it cannot help with the request ("I can only help with returns",
    "I'm not able to help with that")."""
    return any(
        line.role == "agent" and _CANNOT_HELP.search(line.text.replace("\u2019", "'"))
        for line in conversation.transcript
    )
