"""The conversation's earlier entries as model messages.

Messages keep their roles (a human agent's words are the assistant side, marked); tool calls of
earlier turns become an assistant tool call and its result, the result passed through the
untrusted-data envelope, so what earlier turns found (a user id, an order's status) stays in
view. Each item keeps the transcript position (`seq`) it comes from, so the context assembly can
summarise the oldest ones and remember up to where."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from deputy.llm.types import Message, ToolCall
from deputy.runtime.context import TurnInput, result_from_json
from deputy.runtime.journal import RecordedEntry

HUMAN_PREFIX = "[human agent] "
SUMMARY_TOOL_CHARS = 400
"""Characters of a tool result shown to the summariser."""


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters a token), enough to budget a context."""
    return (len(text) + 3) // 4


def message_tokens(message: Message) -> int:
    """The estimated size of one message, its tool calls and a small per-message overhead."""
    calls = sum(
        estimate_tokens(call.name) + estimate_tokens(json.dumps(dict(call.arguments), default=str))
        for call in message.tool_calls
    )
    return estimate_tokens(message.content) + calls + 4


@dataclass(frozen=True)
class HistoryItem:
    """One entry of the transcript as messages (a tool call is a call and its result)."""

    seq: int
    messages: tuple[Message, ...]
    transcript: str
    """The entry as one line of text, for the summariser."""

    @property
    def tokens(self) -> int:
        return sum(message_tokens(m) for m in self.messages)


def _tool_item(entry: RecordedEntry) -> HistoryItem | None:
    data: dict[str, Any] = entry.data
    if "tool" not in data or "status" not in data:
        return None
    result = result_from_json(data)
    arguments = data.get("arguments")
    call = ToolCall(
        id=f"h{entry.seq}",
        name=result.tool,
        arguments=dict(arguments) if isinstance(arguments, dict) else {},
    )
    return HistoryItem(
        entry.seq,
        (
            Message.assistant(tool_calls=(call,)),
            Message.tool_result(call.id, result.for_model()),
        ),
        f"Tool call {result.tool}({json.dumps(call.arguments, ensure_ascii=False, default=str)})"
        f" → {result.for_model(budget=SUMMARY_TOOL_CHARS)}",
    )


def history_item(entry: RecordedEntry) -> HistoryItem | None:
    """The messages of one transcript entry; None for entries the model does not see (model
    steps, guardrail decisions, retrievals, procedure markers…)."""
    if entry.kind == "customer_message":
        return HistoryItem(entry.seq, (Message.user(entry.text),), f"Customer: {entry.text}")
    if entry.kind == "agent_message":
        return HistoryItem(entry.seq, (Message.assistant(entry.text),), f"Agent: {entry.text}")
    if entry.kind == "human_message":
        return HistoryItem(
            entry.seq,
            (Message.assistant(HUMAN_PREFIX + entry.text),),
            f"Human agent: {entry.text}",
        )
    if entry.kind == "tool_call":
        return _tool_item(entry)
    return None


def earlier_entries(turn: TurnInput) -> list[RecordedEntry]:
    """The transcript before this turn, oldest first: the history without anything this turn
    recorded (an attempt that crashed) or recorded after the turn's own message."""
    return sorted(
        (
            e
            for e in turn.history
            if e.seq < turn.inbound.seq and (e.turn_id is None or e.turn_id != turn.turn_id)
        ),
        key=lambda e: e.seq,
    )


def history_items(entries: Iterable[RecordedEntry]) -> list[HistoryItem]:
    """The items of `entries` (oldest first) that the model sees."""
    items = (history_item(e) for e in entries)
    return [item for item in items if item is not None]


def recent_customer_texts(entries: Sequence[RecordedEntry], current: str, count: int) -> str:
    """The current message and the customer's `count - 1` messages before it, newest first."""
    earlier = [e.text for e in reversed(entries) if e.kind == "customer_message"]
    return "\n".join([current, *earlier[: max(count - 1, 0)]])


def current_procedures(entries: Sequence[RecordedEntry]) -> tuple[str, ...]:
    """The procedure the last `procedure` entry says the conversation is in (none when that
    entry records an exit)."""
    for entry in reversed(entries):
        if entry.kind != "procedure":
            continue
        procedure = entry.data.get("procedure")
        if entry.data.get("event") == "exited" or not isinstance(procedure, str):
            return ()
        return (procedure,)
    return ()
