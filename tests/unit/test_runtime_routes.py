"""Routes to other agents in both modes: reasoning offers a `transfer_to_agent` runtime tool,
guided offers the routes next to the procedures; taking one drafts a transfer (and the short
reply saying so), which the turn returns after the output guard; a bad route id is the model's
to correct; a spec without routes offers nothing."""

from __future__ import annotations

from typing import Any

from deputy.domain.spec import AgentSpec
from deputy.runtime.draft import TransferRequest
from deputy.runtime.guided_questions import ROUTE_PREFIX
from deputy.testing import ScriptedModel, reply, structured, tool_call
from tests.unit.test_runtime_turn import Conversation

ROUTES: list[dict[str, Any]] = [
    {
        "id": "billing",
        "agent": "billing-desk",
        "when": "Questions about invoices and charges.",
        "description": "our billing team",
    },
    {"id": "sales", "agent": "agt_sales", "when": "Buying a new plan."},
]


def spec(**changes: Any) -> AgentSpec:
    return AgentSpec.model_validate(
        {
            "name": "Front desk",
            "goal": "Greet customers and send them to the right desk.",
            "mode": "reasoning",
            "guardrails": {"preset": "minimal"},
            "routes": ROUTES,
            **changes,
        }
    )


def offered(model: ScriptedModel) -> dict[str, Any]:
    return {tool.name: tool for tool in model.requests[0].tools}


def test_reasoning_takes_a_route_with_the_runtime_tool() -> None:
    model = ScriptedModel([tool_call("transfer_to_agent", {"route_id": "billing", "reason": "x"})])
    result = Conversation(spec(), model).say("I was charged twice")
    assert result.transfer == TransferRequest("billing", "billing-desk", "x")
    assert result.reply.text == "I'm passing you to our billing team."
    assert result.reply.data["route"] == "billing"
    assert result.handoff is None and not result.failed
    tool = offered(model)["transfer_to_agent"]
    assert tool.parameters["properties"]["route_id"]["enum"] == ["billing", "sales"]
    assert "Buying a new plan." in tool.description


def test_a_route_without_a_description_names_its_id() -> None:
    model = ScriptedModel([tool_call("transfer_to_agent", {"route_id": "sales", "reason": "y"})])
    result = Conversation(spec(), model).say("I want the premium plan")
    assert result.reply.text == "I'm passing you to sales."
    assert result.transfer is not None and result.transfer.agent == "agt_sales"


def test_an_unknown_route_goes_back_to_the_model() -> None:
    model = ScriptedModel(
        [
            tool_call("transfer_to_agent", {"route_id": "legal", "reason": "z"}),
            reply("Let me help you here instead."),
        ]
    )
    result = Conversation(spec(), model).say("I need a lawyer")
    assert result.transfer is None
    assert result.reply.text == "Let me help you here instead."
    feedback = model.requests[1].messages[-1].content
    assert "There is no route 'legal'" in feedback and "billing, sales" in feedback


def test_the_transfer_tool_avoids_a_spec_tool_of_that_name() -> None:
    tools = [
        {
            "name": "transfer_to_agent",
            "effect": "read",
            "binding": {"kind": "builtin", "builtin": "lookup_knowledge"},
        }
    ]
    model = ScriptedModel(
        [tool_call("deputy_transfer_to_agent", {"route_id": "billing", "reason": "r"})]
    )
    result = Conversation(spec(tools=tools), model).say("Invoice question")
    assert "deputy_transfer_to_agent" in offered(model)
    assert result.transfer is not None and result.transfer.route_id == "billing"


def test_without_routes_no_transfer_tool_is_offered() -> None:
    model = ScriptedModel([reply("Hello!")])
    result = Conversation(spec(routes=[]), model).say("Hi")
    assert result.transfer is None
    assert not any("transfer" in name for name in offered(model))


def test_guided_offers_the_routes_next_to_the_procedures() -> None:
    model = ScriptedModel([structured({"procedure": f"{ROUTE_PREFIX}billing"})])
    result = Conversation(spec(mode="guided"), model).say("Why is my invoice so high?")
    assert result.transfer == TransferRequest(
        "billing", "billing-desk", "Questions about invoices and charges."
    )
    assert result.reply.text == "I'm passing you to our billing team."
    request = model.requests[0]
    choices = request.response_schema["properties"]["procedure"]["enum"]  # type: ignore[index]
    assert choices == ["route:billing", "route:sales", "none"]
    assert "Buying a new plan." in request.messages[-1].content


def test_guided_without_a_matching_route_stays() -> None:
    model = ScriptedModel([structured({"procedure": "none"})])
    result = Conversation(spec(mode="guided"), model).say("Hello there")
    assert result.transfer is None
    assert model.remaining == 0
