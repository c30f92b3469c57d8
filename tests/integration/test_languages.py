"""Languages through a channel (the OpenAI-compatible endpoint, with the `openai` client): each
customer message's language is detected with the bundled lite model, recorded on the
conversation and answered in when the spec offers it (reasoning mode: the prompt says so;
guided mode: the template is translated by the model); a language the spec does not offer
keeps the conversation's."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openai import OpenAI

from deputy.llm.types import ModelRequest, ModelResponse
from deputy.testing import FunctionModel, reply, structured
from tests.integration.channel_agent import ECHO_MODEL, echo_agent, echo_answer
from tests.integration.conftest import Api
from tests.integration.languages_corpus import CORPUS
from tests.integration.retail_agent import serve_model

pytestmark = pytest.mark.integration

HEADER = "X-Deputy-Conversation-Id"
LANGUAGES = ["en", "es", "fr", "de", "pt", "ja", "it", "nb"]
_ASKED_LANGUAGE = re.compile(r"Reply in the customer's language \(([^)]+)\)")
_TRANSLATE_INTO = re.compile(r"Translate the text into ([^.]+)\.")
TEMPLATE = "Your order ships within two days."
SHIPPING = {
    "id": "shipping",
    "title": "Say when orders ship",
    "when": "The customer asks when an order ships.",
    "steps": [
        {"id": "tell", "kind": "say", "text": TEMPLATE},
        {"id": "done", "kind": "end", "exit": "told"},
    ],
    "exits": [{"id": "told", "outcome": "resolved"}],
}


def text_of(message: Any) -> str:
    return message.content if isinstance(message.content, str) else str(message.content)


def polyglot(request: ModelRequest) -> ModelResponse:
    """Answers with the language it was asked to reply in (reasoning mode), routes every
    guided conversation to `shipping`, and "translates" by naming the language."""
    system = " ".join(text_of(m) for m in request.messages if m.role == "system")
    if request.schema_name == "route":
        return structured({"procedure": "shipping"})
    if request.schema_name == "translation":
        language = _TRANSLATE_INTO.search(system)
        said = next(text_of(m) for m in request.messages if m.role == "user")
        return structured({"text": f"({language.group(1) if language else '?'}) {said}"})
    if request.response_schema is not None:
        return echo_answer(request)
    asked = _ASKED_LANGUAGE.search(system)
    return reply(f"[{asked.group(1) if asked else 'none'}] Noted.")


def polyglot_agent(api: Api, **spec: Any) -> OpenAI:
    echo_agent(api, name="polyglot", channels={"openai": {"enabled": True}}, **spec)
    serve_model(api, ECHO_MODEL, FunctionModel(polyglot, name=ECHO_MODEL))
    return OpenAI(
        base_url="http://testserver/v1/openai",
        api_key=api.owner_key,
        http_client=api.client,
        max_retries=0,
    )


def ask(client: OpenAI, *messages: str) -> tuple[str, str]:
    """Send a conversation's messages one request at a time (resending the history); the
    last answer and the conversation id."""
    history: list[Any] = []
    answer, conversation_id = "", ""
    for text in messages:
        history.append({"role": "user", "content": text})
        raw = client.chat.completions.with_raw_response.create(
            model="deputy/polyglot", messages=history
        )
        answer = raw.parse().choices[0].message.content or ""
        conversation_id = raw.headers[HEADER]
        history.append({"role": "assistant", "content": answer})
    return answer, conversation_id


def language_of(api: Api, conversation_id: str) -> str | None:
    response = api.client.get(f"/v1/conversations/{conversation_id}", headers=api.headers())
    assert response.status_code == 200, response.text
    language: str | None = response.json()["language"]
    return language


def test_each_message_is_answered_and_recorded_in_its_language(api: Api) -> None:
    client = polyglot_agent(api, languages=LANGUAGES)
    expected = {"en": "en", "es": "es", "fr": "fr", "de": "de", "pt": "pt", "ja": "ja",
                "it": "it"}  # fmt: skip
    for code, tag in expected.items():
        answer, conversation_id = ask(client, CORPUS[code][0])
        assert answer == f"[{tag}] Noted.", code
        assert language_of(api, conversation_id) == tag
    # Norwegian, which the lite model reads as Danish first: the spec's `nb` is its second guess.
    answer, conversation_id = ask(client, CORPUS["no"][1])
    assert (answer, language_of(api, conversation_id)) == ("[nb] Noted.", "nb")


def test_a_conversation_follows_the_customer_between_the_languages_it_offers(api: Api) -> None:
    client = polyglot_agent(api, languages=LANGUAGES)
    answer, conversation_id = ask(client, CORPUS["es"][0], CORPUS["fr"][1])
    assert answer == "[fr] Noted." and language_of(api, conversation_id) == "fr"
    # Korean is not offered and "ok" says nothing: the conversation keeps French.
    answer, same = ask(client, CORPUS["es"][0], CORPUS["fr"][1], CORPUS["ko"][2], "ok")
    assert answer == "[fr] Noted." and language_of(api, same) == "fr"
    # A language the spec does not offer, from the start: the spec's first language.
    answer, other = ask(client, CORPUS["ko"][0])
    assert answer == "[en] Noted." and language_of(api, other) == "en"


def test_guided_templates_are_translated_into_the_customers_language(api: Api) -> None:
    client = polyglot_agent(api, languages=["en", "es", "de"], mode="guided", procedures=[SHIPPING])
    answer, conversation_id = ask(client, "¿Cuándo se envía mi pedido? Lo necesito pronto.")
    assert answer == f"(Spanish) {TEMPLATE}"
    assert language_of(api, conversation_id) == "es"
    entries = api.client.get(
        f"/v1/conversations/{conversation_id}/transcript", headers=api.headers()
    ).json()["entries"]
    purposes = [e["data"]["purpose"] for e in entries if e["kind"] == "model_step"]
    assert "translate" in purposes
    answer, conversation_id = ask(client, "When does my order ship? I need it soon.")
    assert answer == TEMPLATE  # the spec's own language: nothing to translate
    assert language_of(api, conversation_id) == "en"
