"""How a conversation's transcript reads in a terminal: one row per entry, with tool calls as
`tool(arguments) → status` and guardrail stages with the checks that did not simply allow."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

from rich.table import Table
from rich.text import Text

from deputy.domain.resources import TranscriptEntry

# Entries about the model's inner work; shown with --steps.
STEP_KINDS: Final = frozenset({"model_step", "retrieval"})
_LABELS: Final = {
    "customer_message": ("customer", "cyan"),
    "agent_message": ("agent", "green"),
    "human_message": ("human", "magenta"),
    "tool_call": ("tool", "yellow"),
    "guardrail": ("guardrail", "red"),
    "handoff": ("handoff", "magenta"),
    "turn_failed": ("failed", "red"),
    "feedback": ("feedback", "blue"),
}
_ARGUMENTS_SHOWN = 200


def _compact(value: Any, limit: int = _ARGUMENTS_SHOWN) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tool_call(data: dict[str, Any]) -> str:
    arguments = data.get("arguments") or {}
    shown = ", ".join(f"{name}={_compact(value, 60)}" for name, value in arguments.items())
    line = f"{data.get('tool', '?')}({shown}) → {data.get('status', '?')}"
    if data.get("replayed"):
        line += " (replayed)"
    if data.get("status") != "succeeded":
        problem = ": ".join(str(p) for p in (data.get("code"), data.get("message")) if p)
        if problem:
            line += f" [{problem}]"
    elif data.get("output") is not None:
        line += f" {_compact(data['output'], 120)}"
    return line


def _guardrail(data: dict[str, Any]) -> str:
    line = f"{data.get('stage', '?')} check: {data.get('action', '?')}"
    notable = [d for d in data.get("decisions") or [] if d.get("verdict") != "allow"]
    for decision in notable:
        line += f"\n  {decision.get('check')}: {decision.get('verdict')}: {decision.get('reason')}"
    return line


def _retrieval(data: dict[str, Any]) -> str:
    passages = data.get("passages") or []
    return f"search {data.get('query', '')!r}: {len(passages)} passage(s)"


def _model_step(data: dict[str, Any]) -> str:
    response = data.get("response") or {}
    answer = response.get("text") or _compact(response.get("tool_calls") or "", 120)
    return f"model ({data.get('purpose', '?')}): {_compact(answer, 160) if answer else '-'}"


def describe(entry: TranscriptEntry) -> str:
    """What one entry says, in a line or a few."""
    data = entry.data
    if entry.kind == "tool_call":
        return _tool_call(data)
    if entry.kind == "guardrail":
        return _guardrail(data)
    if entry.kind == "retrieval":
        return _retrieval(data)
    if entry.kind == "model_step":
        return _model_step(data)
    if entry.text:
        return entry.text
    return _compact(data) if data else "-"


def transcript_table(entries: Iterable[TranscriptEntry], *, steps: bool) -> Table:
    grid = Table(show_header=True, box=None, pad_edge=False)
    grid.add_column("SEQ", justify="right", no_wrap=True)
    grid.add_column("KIND", no_wrap=True)
    grid.add_column("", overflow="fold")
    for entry in entries:
        if entry.kind in STEP_KINDS and not steps:
            continue
        label, style = _LABELS.get(entry.kind, (entry.kind.replace("_", " "), "dim"))
        grid.add_row(str(entry.seq), Text(label, style=style), Text(describe(entry)))
    return grid
