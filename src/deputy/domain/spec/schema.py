"""The published JSON Schema of AgentSpec v1 (`schemas/agentspec-v1.schema.json`).

It is generated from the model, so the two cannot disagree on structure: every spec the model
accepts validates against it. The model checks more than a JSON Schema can say (which fields a
step kind takes, unique ids, ordered ranges); the linter checks what needs the whole spec."""

from __future__ import annotations

import json
from typing import Any

from deputy.domain.spec.model import SPEC_FORMAT, AgentSpec

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:deputy:schema:agentspec:v1"
SCHEMA_FILENAME = "agentspec-v1.schema.json"


def agent_spec_json_schema() -> dict[str, Any]:
    """JSON Schema 2020-12 for the documents `load_spec` reads (validation mode)."""
    generated = AgentSpec.model_json_schema(mode="validation")
    generated.pop("title", None)
    generated.pop("description", None)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": "Deputy AgentSpec v1",
        "description": (
            f"An agent as data ({SPEC_FORMAT}): goal, persona, procedures with steps, policies, "
            "tool bindings with effect tiers, knowledge, guardrails, channels, escalation, "
            "outcomes and billing, autonomy and SLOs, with provenance on every rule."
        ),
        **generated,
    }


def agent_spec_json_schema_text() -> str:
    """The schema as the committed file holds it: two-space indents and a final newline."""
    return json.dumps(agent_spec_json_schema(), indent=2, ensure_ascii=False) + "\n"
