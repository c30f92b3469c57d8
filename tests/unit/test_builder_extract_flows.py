"""Structured outlines (STAR task flowcharts, ABCD guidelines, read by the builder's readers)
become procedures that follow their branches and lint clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from deputy.builder.read import read_material
from deputy.builder.sources import Anchor, MaterialRef, OutlineItem, OutlineSection, ToolDescription
from deputy.domain.spec import AgentSpec, lint_errors, lint_spec
from tests.unit.builder_extract_setup import extract_from

STAR = Path("/work/shared/data/star/tasks")
ABCD = Path("/work/shared/data/abcd/data/guidelines.json")


def _read(path: Path) -> tuple[OutlineSection, ...]:
    read = read_material(MaterialRef("mat_flow", path.name, "application/json"), path.read_bytes())
    assert read.outlines, read.problems
    return read.outlines


def _lint(procedures: tuple, policies: tuple = ()) -> list:  # type: ignore[type-arg]
    spec = AgentSpec(name="Flows", goal="Help.", procedures=procedures, policies=policies)
    return lint_errors(lint_spec(spec))


def test_a_star_flowchart_follows_its_branches() -> None:
    extraction = extract_from(_read(STAR / "apartment_schedule/apartment_schedule.json"), ())
    (booking,) = extraction.procedures
    assert booking.id == "book_apartment_viewing"
    steps = {step.id: step for step in booking.steps}
    assert booking.steps[0].text == "Hello, how can I help?"
    answer = next(s for s in booking.steps if s.kind == "check" and "'yes'" in (s.condition or ""))
    assert answer.then == "say_apartment_inform_booking_successful"
    assert answer.otherwise == "ask_apartment_name"
    found = next(
        s for s in booking.steps if s.kind == "check" and "'available'" in (s.condition or "")
    )
    assert steps[found.otherwise or ""].text.startswith("I am sorry, but there is no viewing")
    assert _lint(extraction.procedures) == []
    (question,) = extraction.questions
    assert question.kind == "unmatched_tool" and "query_check" in question.text


@pytest.mark.parametrize("task", sorted(p.name for p in STAR.iterdir() if p.is_dir()))
def test_every_star_flowchart_lints_clean(task: str) -> None:
    extraction = extract_from(_read(STAR / task / f"{task}.json"), ())
    assert len(extraction.procedures) == 1
    assert _lint(extraction.procedures) == []


def test_abcd_guidelines_become_one_procedure_per_subflow() -> None:
    sections = _read(ABCD)
    extraction = extract_from(sections, ())
    assert len(extraction.procedures) == len(sections) == 55
    assert _lint(extraction.procedures, extraction.policies) == []
    ids = [p.id for p in extraction.procedures]
    assert len(ids) == len(set(ids))


def test_a_learned_flow_calls_the_tools_it_names() -> None:
    material = MaterialRef("mat_calls", "calls.json", "application/json")

    def entry(key: str, text: str, hint: str, action: str | None, branches: tuple) -> OutlineItem:  # type: ignore[type-arg]
        anchor = Anchor(
            kind="transcript", label=f"conversation 1, turn {key}", quote=text, material=material
        )
        return OutlineItem(key, text, anchor, hint, action, (), branches)  # type: ignore[arg-type]

    section = OutlineSection(
        title="Cancel an order",
        anchor=Anchor(
            kind="transcript", label="3 conversation(s)", quote="cancel", material=material
        ),
        items=(
            entry("ask", "Which order?", "question", None, (("next", "cancel"),)),
            entry("cancel", "I cancelled it.", "action", "cancel_order", (("next", "bye"),)),
            entry("bye", "Anything else?", "reply", None, ()),
        ),
        origin="transcripts",
    )
    tool = ToolDescription(
        name="cancel_order",
        description="Cancel an order.",
        effect="irreversible",
        effect_reason="test",
        parameters={
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
        anchor=Anchor(kind="tool_description", label="cancel_order", quote="Cancel an order."),
    )
    extraction = extract_from((section,), (tool,))
    (cancel,) = extraction.procedures
    assert [s.kind for s in cancel.steps] == [
        "ask",
        "ask",
        "confirm",
        "call_tool",
        "say",
        "end",
        "end",
    ]
    assert cancel.steps[3].arguments == {"order_id": "{order_id}"}
    assert extraction.tool_uses == {"cancel_order": ("cancel_order",)}
    assert cancel.steps[4].next == "done"
