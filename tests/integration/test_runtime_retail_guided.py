"""End to end, guided mode, on the REAL embedded local model (Qwen2.5-Coder-0.5B, what CI
installs): the retail agent on the real API and database, its tools calling the real retail
REST backend over HTTP. A customer signs in by email and exchanges an item of a delivered order
(the irreversible call runs once, after the customer's yes), is refused the return of an order
that was not delivered, and is handed to a human on request. tau2 retail data: ava_moore_2033
has the delivered order #W4817420 (a water bottle 6777246137, with an available glass variant
4579334072, paid by gift card) and the pending order #W4135875. Run with -s to see each turn."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from deputy.llm.local import LocalEngine, LocalModels
from deputy.llm.local.catalog import QWEN_0_5B
from deputy.llm.types import Model
from tests.integration.conftest import Api
from tests.integration.retail_agent import RetailAgent, retail_agent

pytestmark = pytest.mark.integration
pytest.importorskip("xllamacpp", reason="the local model extra (xllamacpp) is not installed")

EMAIL = "ava.moore6020@example.com"
DELIVERED = "#W4817420"
PENDING = "#W4135875"
BOTTLE = "6777246137"
GLASS_BOTTLE = "4579334072"
GIFT_CARD = "gift_card_8168843"
EXCHANGE = "exchange_delivered_order_items"


@pytest.fixture(scope="module")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Model]:
    engine = LocalEngine()
    models = LocalModels(tmp_path_factory.mktemp("model-cache"), engine=engine)
    status = models.status(QWEN_0_5B.name)
    if status.state == "not_installed":
        engine.close()
        pytest.skip(f"{QWEN_0_5B.name} is not installed: {status.install_command}")
    yield models.get(QWEN_0_5B.name)
    engine.close()


@pytest.fixture
def shop(api: Api, local_model: Model) -> Iterator[RetailAgent]:
    with retail_agent(api, QWEN_0_5B.name, local_model, mode="guided") as agent:
        yield agent


class Chat:
    def __init__(self, shop: RetailAgent) -> None:
        self.shop = shop
        self.id = shop.start(customer={"channel": "chat", "external_id": "ava"})["id"]

    def say(self, text: str) -> dict[str, Any]:
        started = time.monotonic()
        result = self.shop.say(self.id, text)
        reply = result["reply"]["text"] if result["reply"] else None
        print(f"[{time.monotonic() - started:5.1f}s] customer: {text}\n         agent: {reply}")
        return result

    def reply(self, text: str) -> str:
        answer = self.say(text)["reply"]
        assert answer is not None
        return str(answer["text"])


def test_sign_in_then_exchange_an_item_through_the_api(shop: RetailAgent) -> None:
    chat = Chat(shop)
    first = chat.reply(f"Hi, I want to exchange an item of a delivered order. My email is {EMAIL}")
    assert "I have found your account" in first
    assert "Which items" in chat.reply(f"It's order {DELIVERED}")
    assert "Which option" in chat.reply(f"The water bottle, item {BOTTLE}")
    assert "payment methods" in chat.reply(f"I'd like {GLASS_BOTTLE} instead")
    confirm = chat.reply(f"Use my gift card {GIFT_CARD}")
    assert confirm.startswith(f"To confirm: in order {DELIVERED}, exchange {BOTTLE}")
    assert shop.server.backend.arrived(EXCHANGE) == 0
    assert chat.reply("yes").startswith("Done. The exchange is requested")
    assert shop.server.backend.ran(EXCHANGE) == 1
    assert shop.server.order(DELIVERED)["exchange_new_items"] == [GLASS_BOTTLE]

    transcript = shop.transcript(chat.id)
    steps = [
        e["data"]["step"] for e in transcript if e["kind"] == "procedure" and "step" in e["data"]
    ]
    assert "confirm_exchange" in steps and "exchange" in steps
    purposes = {e["data"]["purpose"] for e in transcript if e["kind"] == "model_step"}
    assert purposes and "reasoning" not in purposes  # constrained questions only
    closed = shop.api.client.post(
        f"/v1/conversations/{chat.id}/close", json={}, headers=shop.api.headers()
    ).json()
    assert closed["outcome"] == "resolved"
    assert closed["outcome_evidence"]["exit_id"] == "exchanged"


def test_a_return_of_an_order_not_delivered_is_refused(shop: RetailAgent) -> None:
    chat = Chat(shop)
    reply = chat.reply(f"Hello, my email is {EMAIL}. I want to return my order {PENDING}.")
    assert reply.endswith(f"only delivered orders can be returned, and order {PENDING} is pending.")
    assert shop.server.backend.arrived("return_delivered_order_items") == 0
    assert shop.server.order(PENDING)["status"] == "pending"


def test_asking_for_a_person_hands_over_to_the_queue(shop: RetailAgent) -> None:
    chat = Chat(shop)
    result = chat.say("I don't want a bot. Can I speak to a real person please?")
    conversation = result["conversation"]
    assert (conversation["status"], conversation["queue"]) == ("queued", "retail_support")
    assert conversation["handoff"]["trigger"] == "customer_request"
