"""Material the builder's extraction tests share: the real tau2 retail policy and tools, a second
SOP of a different business (mobile telecom) with numbered steps and tables, and a spec
assembled from an extraction so it can be linted."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from deputy.builder.asker import Asker
from deputy.builder.assemble import spec_tool
from deputy.builder.extract import Extraction, extract
from deputy.builder.outline import outline_document
from deputy.builder.read import read_material
from deputy.builder.read_tools import tool_domains
from deputy.builder.sources import MaterialRef, OutlineSection, SourceDocument, ToolDescription
from deputy.domain.spec import AgentSpec, Escalation, Procedure
from deputy.knowledge.parse import parse_document

T = TypeVar("T")

DATA = Path("/work/shared/data/tau2-bench")
RETAIL_POLICY = DATA / "data/tau2/domains/retail/policy.md"
TOOLS_DATA = DATA / "tools-data.json"

TELECOM_SOP = """# Mobile support handbook

## Revision history

| Version | Date | Author |
|---|---|---|
| 1.2 | 2024-03-01 | Operations |

## General rules

- Never share account details with anyone but the account holder.
- Always be polite and concise.
- Payments over $500 need a supervisor.

## Verifying the caller

Before helping with anything, verify the caller's identity by asking for their phone number or
email.

## Suspend a line

1. Ask the customer for the line id.
2. Check that the line is active.
3. Ask for the reason for the suspension: 'lost device', 'travel' or 'other'.
4. Suspend the line with suspend_line.
5. Tell the customer that the line can be reactivated at any time.

## Pay an overdue bill

Payments can only be taken if the bill is overdue.

The customer must provide the amount and the payment method id.

If the customer disputes the bill, transfer them to the billing team.

## Plans and prices

| Plan | Monthly price | Data |
|---|---|---|
| Basic | $20 | 5 GB |
| Unlimited | $60 | Unlimited |
"""


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def document(data: bytes, name: str, media_type: str, material: str = "mat_doc") -> SourceDocument:
    return SourceDocument(MaterialRef(material, name, media_type), parse_document(data, media_type))


def retail_policy() -> SourceDocument:
    return document(RETAIL_POLICY.read_bytes(), "policy.md", "text/markdown", "mat_policy")


def telecom_sop() -> SourceDocument:
    return document(TELECOM_SOP.encode(), "handbook.md", "text/markdown", "mat_sop")


def domain_tools(domain: str) -> tuple[ToolDescription, ...]:
    """The tools of one tau2 domain, read from tools-data.json by the builder's own reader."""
    read = read_material(
        MaterialRef("mat_tools", "tools-data.json", "application/json"), TOOLS_DATA.read_bytes()
    )
    return tool_domains(read.tools)[domain]


def extract_from(
    sections: Sequence[OutlineSection],
    tools: Sequence[ToolDescription],
    asker: Asker | None = None,
) -> Extraction:
    return run(extract(sections, tools, asker=asker or Asker(None), goal="Help our customers."))


def extract_document(source: SourceDocument, tools: Sequence[ToolDescription]) -> Extraction:
    return extract_from(outline_document(source), tools)


def spec_of(extraction: Extraction, tools: Sequence[ToolDescription]) -> AgentSpec:
    """A spec holding the extraction's procedures, policies and escalation rules."""
    return AgentSpec(
        name="Support",
        goal="Help our customers.",
        procedures=extraction.procedures,
        policies=extraction.policies,
        tools=tuple(spec_tool(tool) for tool in tools),
        escalation=Escalation(rules=extraction.escalation_rules),
    )


def procedure(extraction: Extraction, procedure_id: str) -> Procedure:
    found = next((p for p in extraction.procedures if p.id == procedure_id), None)
    assert found is not None, f"{procedure_id} not in {[p.id for p in extraction.procedures]}"
    return found


def calls(found: Procedure) -> list[str]:
    return [step.tool for step in found.steps if step.kind == "call_tool" and step.tool]
