"""End to end, reasoning mode: the retail agent on the real API and database, its tools calling
the real retail REST backend over HTTP, a scripted model deciding each step. A customer exchanges
an item (the irreversible call waits for the customer's yes and runs once), is refused a return
the store's rules forbid, and is handed to a human on request (queue, claim, reply, hand back)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from deputy.llm.types import ModelRequest, ModelResponse
from deputy.testing import FunctionModel, reply, tool_call
from tests.integration.conftest import Api
from tests.integration.retail_agent import (
    DELIVERED,
    EMAIL,
    HOSE,
    OTHER_HOSE,
    PAYPAL,
    PENDING,
    RetailAgent,
    retail_agent,
)

pytestmark = pytest.mark.integration

MODEL = "openai:retail-reasoning-test"
Script = Callable[[ModelRequest], ModelResponse]


def called(request: ModelRequest) -> list[str]:
    return [call.name for message in request.messages for call in message.tool_calls]


def exchange_script(request: ModelRequest) -> ModelResponse:
    done = called(request)
    if "find_user_id_by_email" not in done:
        return tool_call("find_user_id_by_email", {"email": EMAIL})
    if "get_order_details" not in done:
        return tool_call("get_order_details", {"order_id": DELIVERED})
    if "exchange_delivered_order_items" not in done:
        return tool_call(
            "exchange_delivered_order_items",
            {
                "order_id": DELIVERED,
                "item_ids": [HOSE],
                "new_item_ids": [OTHER_HOSE],
                "payment_method_id": PAYPAL,
            },
        )
    if "complete_procedure" not in done:
        return tool_call(
            "complete_procedure", {"procedure_id": "exchange_order_items", "exit_id": "exchanged"}
        )
    return reply(f"Done: the exchange for order {DELIVERED} is requested.")


def return_script(request: ModelRequest) -> ModelResponse:
    done = called(request)
    if "find_user_id_by_email" not in done:
        return tool_call("find_user_id_by_email", {"email": EMAIL})
    if "return_delivered_order_items" not in done:
        return tool_call(
            "return_delivered_order_items",
            {"order_id": PENDING, "item_ids": ["1234567890"], "payment_method_id": PAYPAL},
        )
    return reply(f"I'm sorry, order {PENDING} cannot be returned: it has not been delivered.")


class Scripts:
    """One script per conversation, chosen by the conversation id the runtime sends along."""

    def __init__(self) -> None:
        self.by_conversation: dict[str, Script] = {}
        self.requests: list[ModelRequest] = []

    def __call__(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        return self.by_conversation[request.metadata["conversation_id"]](request)


@pytest.fixture
def scripts() -> Scripts:
    return Scripts()


@pytest.fixture
def shop(api: Api, scripts: Scripts) -> Any:
    with retail_agent(api, MODEL, FunctionModel(scripts), mode="reasoning") as agent:
        yield agent


def kinds(agent: RetailAgent, conversation_id: str) -> list[str]:
    return [e["kind"] for e in agent.transcript(conversation_id)]


def test_an_exchange_waits_for_the_customers_yes_and_runs_once(
    shop: RetailAgent, scripts: Scripts
) -> None:
    conversation = shop.start(customer={"channel": "chat", "external_id": "ivan"})
    cid = conversation["id"]
    scripts.by_conversation[cid] = exchange_script

    first = shop.say(cid, f"Hi, I'd like a longer hose instead of the one in {DELIVERED}. {EMAIL}")
    question = first["reply"]["text"]
    assert "exchange_delivered_order_items" in question and "yes" in question.lower()
    assert shop.server.backend.arrived("exchange_delivered_order_items") == 0
    refused = shop.tool_calls(cid)[-1]
    assert (refused["status"], refused["code"]) == ("refused", "confirmation_required")

    second = shop.say(cid, "Yes, go ahead.")
    assert f"exchange for order {DELIVERED} is requested" in second["reply"]["text"]
    assert shop.server.backend.ran("exchange_delivered_order_items") == 1
    assert shop.server.order(DELIVERED)["status"] == "exchange requested"
    calls = [(c["tool"], c["status"]) for c in shop.tool_calls(cid)]
    assert calls == [
        ("find_user_id_by_email", "succeeded"),
        ("get_order_details", "succeeded"),
        ("exchange_delivered_order_items", "refused"),
        ("exchange_delivered_order_items", "succeeded"),
    ]
    every = kinds(shop, cid)
    assert {"customer_message", "model_step", "tool_call", "guardrail", "agent_message"} <= set(
        every
    )

    closed = shop.api.client.post(
        f"/v1/conversations/{cid}/close", json={}, headers=shop.api.headers()
    )
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert (body["status"], body["outcome"]) == ("closed", "resolved")
    evidence = body["outcome_evidence"]
    assert (evidence["procedure_id"], evidence["exit_id"]) == ("exchange_order_items", "exchanged")
    exchange_call = shop.tool_calls(cid)[-1]["call_id"]
    assert evidence["tool_call_ids"] == [exchange_call]


def test_a_return_the_store_forbids_is_refused_and_nothing_changes(
    shop: RetailAgent, scripts: Scripts
) -> None:
    before = shop.server.order(PENDING)
    cid = shop.start()["id"]
    scripts.by_conversation[cid] = return_script
    asked = shop.say(cid, f"I want to return order {PENDING}, my email is {EMAIL}")
    assert "return_delivered_order_items" in asked["reply"]["text"]
    answer = shop.say(cid, "yes")
    assert "cannot be returned" in answer["reply"]["text"]
    assert shop.server.order(PENDING) == before
    attempt = shop.tool_calls(cid)[-1]
    assert (attempt["tool"], attempt["status"]) == ("return_delivered_order_items", "failed")
    assert shop.server.backend.ran("return_delivered_order_items") == 1


def test_asking_for_a_person_queues_the_conversation_for_a_human(
    shop: RetailAgent, scripts: Scripts
) -> None:
    api, h = shop.api, shop.api.headers()
    cid = shop.start()["id"]
    scripts.by_conversation[cid] = exchange_script
    handed = shop.say(cid, "Please let me talk to a human agent.")
    assert handed["conversation"]["status"] == "queued"
    assert handed["conversation"]["handoff"]["trigger"] == "customer_request"
    assert handed["reply"]["text"] == "YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON."
    assert not [r for r in scripts.requests if r.metadata["conversation_id"] == cid]

    queue = api.client.get("/v1/queue", params={"queue": "retail_support"}, headers=h).json()
    assert [c["id"] for c in queue["data"]] == [cid]
    claimed = api.client.post(f"/v1/conversations/{cid}/claim", headers=h)
    assert claimed.json()["status"] == "human"
    waiting = shop.say(cid, "Hello? Anyone there?")
    assert waiting["reply"] is None  # a person answers now, not the agent
    human = api.client.post(
        f"/v1/conversations/{cid}/human-replies", json={"text": "Hi, I'm Sam."}, headers=h
    )
    assert human.status_code == 201, human.text
    back = api.client.post(f"/v1/conversations/{cid}/hand-back", headers=h)
    assert back.json()["status"] == "active"
    assert kinds(shop, cid)[-2:] == ["customer_message", "human_message"]
    closed = api.client.post(f"/v1/conversations/{cid}/close", json={}, headers=h).json()
    assert closed["outcome"] == "escalated"
