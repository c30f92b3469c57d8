from __future__ import annotations

import pytest
from pydantic import ValidationError

from deputy.domain.spec import AgentSpec
from deputy.domain.tenancy import ALL_SCOPES, ROLE_SCOPES
from deputy.services.keys import grantable_scopes


def test_spec_rejects_unknown_fields_and_duplicate_ids() -> None:
    with pytest.raises(ValidationError, match="extra"):
        AgentSpec.model_validate({"name": "a", "goal": "g", "golas": "typo"})
    step = {"id": "s", "kind": "say", "text": "hi"}
    procedure = {"id": "p", "title": "P", "when": "always", "steps": [step, step]}
    with pytest.raises(ValidationError, match="repeats step ids"):
        AgentSpec.model_validate({"name": "a", "goal": "g", "procedures": [procedure]})
    tool = {"name": "t", "effect": "read", "binding": {"kind": "builtin", "builtin": "handoff"}}
    with pytest.raises(ValidationError, match="unique"):
        AgentSpec.model_validate({"name": "a", "goal": "g", "tools": [tool, tool]})


def test_roles_are_nested_and_only_owners_administer() -> None:
    assert ROLE_SCOPES["viewer"] < ROLE_SCOPES["reviewer"]
    assert ROLE_SCOPES["viewer"] < ROLE_SCOPES["builder"] < ROLE_SCOPES["owner"]
    assert "reviews:write" not in ROLE_SCOPES["builder"]
    assert "workspaces:create" not in ROLE_SCOPES["owner"]


def test_effective_scopes_are_role_and_key_intersected() -> None:
    everything = frozenset(ALL_SCOPES)
    assert grantable_scopes("member", "viewer", everything) == ROLE_SCOPES["viewer"]
    assert grantable_scopes("member", None, everything) == frozenset()
    assert grantable_scopes("channel", None, everything) == {
        "conversations:read",
        "conversations:write",
    }
    assert "workspaces:create" in grantable_scopes("member", "owner", everything)
    assert "workspaces:create" not in grantable_scopes("service", None, everything)
