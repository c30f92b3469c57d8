"""The published JSON Schema: committed, current, and in agreement with the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings

from deputy.domain.spec import AgentSpec, agent_spec_json_schema, dump_json, dump_yaml, load_spec
from deputy.domain.spec.io import parse_spec_text
from deputy.domain.spec.schema import SCHEMA_FILENAME, SCHEMA_ID, agent_spec_json_schema_text
from deputy.testing.specs import agent_specs

# Shrinking a failing spec can take Hypothesis minutes; let it finish and report it.
SHRINK_TIMEOUT = 600

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "schemas" / SCHEMA_FILENAME
EXAMPLES = sorted((ROOT / "examples" / "specs").glob("*.yaml"))
VALIDATOR = jsonschema_rs.validator_for(json.loads(PUBLISHED.read_text(encoding="utf-8")))


def test_the_committed_schema_is_the_generated_one() -> None:
    """Regenerate with `deputy spec schema --output schemas/agentspec-v1.schema.json`."""
    assert PUBLISHED.read_text(encoding="utf-8") == agent_spec_json_schema_text()


def test_the_schema_is_a_2020_12_schema_with_identity() -> None:
    schema = agent_spec_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID
    assert schema["title"] == "Deputy AgentSpec v1"
    assert "procedures" in schema["description"]
    assert jsonschema_rs.meta.is_valid(schema)
    assert isinstance(VALIDATOR, jsonschema_rs.Draft202012Validator)
    assert schema["required"] == ["name", "goal"]
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_handwritten_specs_validate_against_the_schema(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    spec = load_spec(text)  # the model accepts it...
    for document in (
        parse_spec_text(text),  # ...as written,
        spec.model_dump(mode="json"),  # as the API stores it,
        parse_spec_text(dump_yaml(spec)),  # and as `deputy spec fmt` writes it
        json.loads(dump_json(spec)),
    ):
        errors = [error.message for error in VALIDATOR.iter_errors(document)]
        assert errors == []


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"name": "x"}, "goal"),
        ({"name": "x", "goal": "g", "golas": "typo"}, "golas"),
        ({"name": "x", "goal": "g", "mode": "fast"}, "fast"),
        (
            {
                "name": "x",
                "goal": "g",
                "tools": [
                    {"name": "T", "effect": "read", "binding": {"kind": "builtin", "builtin": "x"}}
                ],
            },
            "T",
        ),
        (
            {
                "name": "x",
                "goal": "g",
                "procedures": [{"id": "p", "title": "t", "when": "w", "steps": [{"id": "s"}]}],
            },
            "kind",
        ),
    ],
)
def test_the_schema_refuses_what_the_model_refuses(document: dict[str, Any], where: str) -> None:
    errors = [error.message for error in VALIDATOR.iter_errors(document)]
    assert errors and any(where in message for message in errors), errors
    with pytest.raises(ValueError, match="validation error"):
        AgentSpec.model_validate(document)


@pytest.mark.timeout(SHRINK_TIMEOUT)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agent_specs())
def test_any_spec_the_model_accepts_validates_against_the_schema(spec: AgentSpec) -> None:
    for document in (spec.model_dump(mode="json"), parse_spec_text(dump_yaml(spec))):
        assert [error.message for error in VALIDATOR.iter_errors(document)] == []
