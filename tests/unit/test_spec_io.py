"""AgentSpecs as YAML and JSON: lossless round trips, readable output, precise errors."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from deputy.domain.errors import ValidationFailed
from deputy.domain.spec import AgentSpec, dump_json, dump_yaml, load_spec, spec_from_data
from deputy.domain.spec.io import parse_spec_text, spec_to_data
from deputy.services.agents import validate_spec
from deputy.testing.specs import agent_specs

# Shrinking a failing spec can take Hypothesis minutes; let it finish and report it.
SHRINK_TIMEOUT = 600

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "specs"
HANDWRITTEN = sorted(EXAMPLES.glob("*.yaml"))
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def errors_of(text: str, fmt: Any = "auto") -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        load_spec(text, fmt)
    problems: list[dict[str, str]] = caught.value.details["errors"]
    return problems


def minimal(**extra: Any) -> AgentSpec:
    return AgentSpec.model_validate({"name": "Support", "goal": "Help.", **extra})


@pytest.mark.parametrize("path", HANDWRITTEN, ids=lambda p: p.name)
def test_handwritten_specs_round_trip_through_yaml_and_json(path: Path) -> None:
    spec = load_spec(path.read_text(encoding="utf-8"))
    assert load_spec(dump_yaml(spec)) == spec
    assert load_spec(dump_json(spec)) == spec
    assert load_spec(dump_json(spec), "json") == spec
    assert dump_yaml(load_spec(dump_yaml(spec))) == dump_yaml(spec)  # a fixed point


def test_yaml_is_readable_block_style_in_model_order_without_defaults() -> None:
    spec = minimal(
        goal="Help customers.\nFollow the store policy.\n",
        tools=[
            {
                "name": "get_order",
                "effect": "read",
                "binding": {"kind": "openapi", "source": "shop", "operation": "getOrder"},
            }
        ],
        languages=["en", "fr"],
    )
    text = dump_yaml(spec)
    assert text == (
        "format: deputy.agentspec/v1\n"
        "name: Support\n"
        "goal: |\n"
        "  Help customers.\n"
        "  Follow the store policy.\n"
        "languages:\n"
        "  - en\n"
        "  - fr\n"
        "tools:\n"
        "  - name: get_order\n"
        "    effect: read\n"
        "    binding:\n"
        "      kind: openapi\n"  # the binding's kind stays although it is the default
        "      source: shop\n"
        "      operation: getOrder\n"
    )
    assert list(json.loads(dump_json(spec))) == ["format", "name", "goal", "languages", "tools"]


def test_texts_that_look_like_other_yaml_types_stay_texts() -> None:
    tricky = ["yes", "null", "017", "1e5", "0x1f", "1:20", "2024-01-01", "a: b", "#x", "- x"]
    spec = minimal(guardrails={"forbidden_topics": tricky, "disclaimers": ["a\u2028b", "c\r\nd"]})
    text = dump_yaml(spec)
    assert "- 'yes'" in text and "- '1e5'" in text and "- '2024-01-01'" in text
    assert '"a\\Lb"' in text and '"c\\r\\nd"' in text
    assert load_spec(text) == spec


def test_prices_keep_their_exact_decimal_value() -> None:
    prices = {
        "price_per_resolution": Decimal("12345678.123456"),
        "price_per_conversation": Decimal("0.000001"),
        "price_per_1k_tokens": Decimal("100"),
        "price_per_voice_minute": Decimal("0.10"),
    }
    spec = minimal(outcomes={"billing": {"model": "consumption_based", **prices}})
    text = dump_yaml(spec)
    assert "price_per_resolution: 12345678.123456\n" in text
    assert "price_per_conversation: 0.000001\n" in text
    assert "price_per_1k_tokens: 100\n" in text
    assert json.loads(dump_json(spec))["outcomes"]["billing"]["price_per_voice_minute"] == "0.10"
    for loaded in (load_spec(text), load_spec(dump_json(spec))):
        billing = loaded.outcomes.billing
        assert billing is not None
        assert {name: getattr(billing, name) for name in prices} == prices
    assert isinstance(spec_to_data(spec)["outcomes"]["billing"]["price_per_resolution"], Decimal)


def test_yaml_reads_core_schema_scalars() -> None:
    data = parse_spec_text(
        "a: 017\nb: 2024-01-01\nc: yes\nd: 1e5\ne: 0x1f\nf: 12:30\ng: ~\nh: .5\ni: True\nj: <<\n"
    )
    assert data == {
        "a": 17,
        "b": "2024-01-01",
        "c": "yes",
        "d": 100000.0,
        "e": "0x1f",
        "f": "12:30",
        "g": None,
        "h": 0.5,
        "i": True,
        "j": "<<",
    }


def test_syntax_errors_say_where() -> None:
    [problem] = errors_of("name: x\ngoal: [unclosed\n")
    assert problem["type"] == "yaml_syntax" and problem["loc"] == "line 3, column 1"
    [problem] = errors_of('{"name": "x",\n "goal": }', "json")
    assert problem == {
        "loc": "line 2, column 10",
        "message": "Expecting value",
        "type": "json_syntax",
    }


def test_repeated_keys_are_refused_not_silently_dropped() -> None:
    [problem] = errors_of("name: a\ngoal: g\nname: b\n")
    assert problem["loc"] == "line 3, column 1"
    assert "found the key 'name' twice" in problem["message"]
    [problem] = errors_of('{"name": "a", "goal": "g", "goal": "h"}')
    assert problem["message"] == "found the key 'goal' twice in one object"
    assert errors_of('{"name": "a", "goal": NaN}')[0]["message"] == "NaN is not a JSON number"


def test_documents_that_are_not_mappings() -> None:
    assert errors_of("- a\n- b\n") == [
        {"loc": "", "message": "the document must be a mapping, not a list", "type": "not_mapping"}
    ]
    assert errors_of("")[0]["message"] == "the document must be a mapping, not nothing"


def test_validation_errors_name_each_field() -> None:
    text = """
name: x
goal: g
tools:
  - name: t
    effect: nuke
    binding: {kind: builtin, builtin: handoff}
procedures:
  - id: p
    title: P
    when: w
    steps: []
"""
    problems = errors_of(text)
    assert {(p["loc"], p["type"]) for p in problems} == {
        ("tools.0.effect", "literal_error"),
        ("procedures.0.steps", "too_short"),
    }


def test_the_service_validates_through_the_domain() -> None:
    raw = {"name": "x", "goal": "g", "mode": "fast"}
    with pytest.raises(ValidationFailed) as from_service:
        validate_spec(raw)
    with pytest.raises(ValidationFailed) as from_domain:
        spec_from_data(raw)
    assert from_service.value.details == from_domain.value.details
    assert from_service.value.details["errors"][0]["loc"] == "mode"


def test_auto_detects_json_and_yaml() -> None:
    spec = minimal(persona={"name": "Robin"})
    assert load_spec("  " + dump_json(spec)) == spec
    assert load_spec(dump_yaml(spec), "yaml") == spec
    assert yaml.safe_load(dump_yaml(spec))["persona"] == {"name": "Robin"}  # plain YAML reads it


@pytest.mark.timeout(SHRINK_TIMEOUT)
@PROPERTY
@given(agent_specs())
def test_any_spec_round_trips_through_yaml(spec: AgentSpec) -> None:
    text = dump_yaml(spec)
    assert load_spec(text, "yaml") == spec
    assert dump_yaml(load_spec(text)) == text


@pytest.mark.timeout(SHRINK_TIMEOUT)
@PROPERTY
@given(agent_specs())
def test_any_spec_round_trips_through_json(spec: AgentSpec) -> None:
    assert load_spec(dump_json(spec), "json") == spec
    assert load_spec(dump_json(spec, indent=None)) == spec
