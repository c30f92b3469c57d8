"""What guided mode reads from a spec's procedures: where a step goes next (the same semantics
as `deputy.domain.spec.flow`), which tool call a confirmation is for, which procedure produces a
context value another one needs, and which slots a tool takes as a list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue

from deputy.domain.spec import AgentSpec, Exit, Procedure, Slot, Step
from deputy.runtime.guided_slots import SlotShape
from deputy.runtime.guided_templates import placeholder
from deputy.runtime.ports import ToolRunner


def continuation(procedure: Procedure, step: Step) -> str | None:
    """The step after `step`: its `next`, else the following step, else None (the end)."""
    if step.next is not None:
        return step.next
    ids = [s.id for s in procedure.steps]
    index = ids.index(step.id)
    return ids[index + 1] if index + 1 < len(ids) else None


def call_after(procedure: Procedure, step: Step) -> Step | None:
    """The first `call_tool` step reached from `step` along continuations (what a confirm step
    asks the customer to agree to), stopping at a terminal step."""
    seen = {step.id}
    target = continuation(procedure, step)
    while target is not None and target not in seen:
        seen.add(target)
        current = procedure.step(target)
        if current is None or current.terminal:
            return None
        if current.kind == "call_tool":
            return current
        target = continuation(procedure, current)
    return None


def slot_of(procedure: Procedure, slot_id: str) -> Slot:
    """The procedure's declaration of a slot (a plain text slot when it declares none)."""
    declared = next((s for s in procedure.slots if s.id == slot_id), None)
    return declared or Slot(id=slot_id)


def context_slot_ids(spec: AgentSpec) -> frozenset[str]:
    """Slots that some procedure reads from the conversation's context."""
    return frozenset(
        slot.id for p in spec.procedures for slot in p.slots if slot.source == "context"
    )


def _produces(procedure: Procedure, slot_id: str) -> bool:
    declared = next((s for s in procedure.slots if s.id == slot_id), None)
    if declared is not None and declared.source == "context":
        return False
    return any(
        (step.kind == "call_tool" and step.save_as == slot_id)
        or (step.kind == "ask" and step.slot == slot_id)
        for step in procedure.steps
    )


def prerequisite(
    spec: AgentSpec, procedure: Procedure, context: Mapping[str, JsonValue]
) -> Procedure | None:
    """A procedure to run before `procedure`: one producing a context slot that `procedure`
    reads and the context does not hold yet (the customer must be authenticated first)."""
    for slot in procedure.slots:
        if slot.source != "context" or context.get(slot.id) is not None:
            continue
        producer = next(
            (p for p in spec.procedures if p.id != procedure.id and _produces(p, slot.id)), None
        )
        if producer is not None:
            return producer
    return None


def exit_of(procedure: Procedure, exit_id: str | None) -> Exit | None:
    return next((e for e in procedure.exits if e.id == exit_id), None)


def escalated_exit(procedure: Procedure) -> Exit | None:
    return next((e for e in procedure.exits if e.outcome == "escalated"), None)


def _is_array(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    kinds = schema.get("type")
    if kinds == "array" or (isinstance(kinds, list) and "array" in kinds):
        return True
    return any(_is_array(s) for s in schema.get("anyOf", []) + schema.get("oneOf", []))


async def _schema(tools: ToolRunner, tool: str) -> dict[str, Any] | None:
    try:
        return await tools.tool_schema(tool)
    except Exception:  # a schema we cannot learn only means: no slot is known to be a list
        return None


async def list_slots(tools: ToolRunner, procedure: Procedure) -> frozenset[str]:
    """Slots a tool of the procedure takes whole (`'{item_ids}'`) as an array argument."""
    found: set[str] = set()
    for step in procedure.steps:
        if step.kind != "call_tool" or step.tool is None:
            continue
        wanted = {
            name: field
            for name, value in step.arguments.items()
            if (field := placeholder(value)) is not None and field.isidentifier()
        }
        if not wanted:
            continue
        schema = await _schema(tools, step.tool)
        properties = schema.get("properties") if isinstance(schema, dict) else None
        if not isinstance(properties, dict):
            continue
        found.update(field for name, field in wanted.items() if _is_array(properties.get(name)))
    return frozenset(found)


def shapes(procedure: Procedure, lists: frozenset[str]) -> dict[str, SlotShape]:
    """Every slot the procedure declares or asks for, with its shape."""
    ids = [s.id for s in procedure.slots] + [
        step.slot for step in procedure.steps if step.kind == "ask" and step.slot
    ]
    return {i: SlotShape(slot_of(procedure, i), i in lists) for i in dict.fromkeys(ids)}
