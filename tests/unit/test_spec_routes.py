"""Routes to other agents in the AgentSpec: validated (unique ids, bounded fields) and, in the
diff, a route added or retargeted widens what the agent may do (another agent, with its own
tools, gets the conversation); a removed route or a reworded `when` does not."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from deputy.domain.spec import AgentSpec, diff_specs, render_diff_text

BASE: dict[str, Any] = {"name": "Front desk", "goal": "Send customers to the right desk."}
BILLING: dict[str, Any] = {"id": "billing", "agent": "billing-desk", "when": "Invoices."}


def spec(*routes: dict[str, Any]) -> AgentSpec:
    return AgentSpec.model_validate({**BASE, "routes": list(routes)})


def test_routes_are_looked_up_by_id() -> None:
    agent = spec(BILLING, {**BILLING, "id": "sales", "agent": "agt_sales"})
    route = agent.route("sales")
    assert route is not None and route.agent == "agt_sales"
    assert agent.route("legal") is None


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        (
            [BILLING, {**BILLING, "agent": "other"}],
            "route ids must be unique; repeated: ['billing']",
        ),
        ([{**BILLING, "agent": ""}], "at least 1 character"),
        ([{**BILLING, "when": "x" * 2001}], "at most 2000 characters"),
        ([{**BILLING, "id": "Billing"}], "should match pattern"),
        ([{**BILLING, "queue": "x"}], "Extra inputs are not permitted"),
    ],
)
def test_invalid_routes_are_refused(routes: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        spec(*routes)


def test_a_new_route_widens_permissions() -> None:
    diff = diff_specs(spec(), spec(BILLING))
    (change,) = diff.changes
    assert (change.kind, change.area, change.path) == ("added", "route", "routes[billing]")
    assert (
        change.widens_because
        == 'passes conversations to the agent "billing-desk" (route `billing`)'
    )
    text = render_diff_text(diff)
    assert "Widens permissions" in text and 'new route `billing` (to "billing-desk")' in text


def test_a_retargeted_route_widens_permissions() -> None:
    diff = diff_specs(spec(BILLING), spec({**BILLING, "agent": "agt_other"}))
    (change,) = diff.changes
    assert change.path == "routes[billing].agent"
    assert (
        change.widens_because == 'route `billing` now passes conversations to the agent "agt_other"'
    )


def test_removing_or_rewording_a_route_does_not_widen() -> None:
    removed = diff_specs(spec(BILLING), spec())
    assert [c.kind for c in removed.changes] == ["removed"] and not removed.widens_permissions
    reworded = diff_specs(spec(BILLING), spec({**BILLING, "when": "Invoices and refunds."}))
    assert reworded.changes and not reworded.widens_permissions
