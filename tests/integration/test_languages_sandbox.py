"""Sandbox scenarios in other languages, through the API: a scripted Spanish customer and a
simulated French one (its model told to write French), the agent answering each in the
customer's language, and the judge told that the chat and the assertion may differ in
language."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from deputy.llm.types import ModelRequest, ModelResponse
from deputy.testing import FunctionModel, reply, structured
from tests.integration.channel_agent import ECHO_MODEL, echo_agent, echo_answer
from tests.integration.conftest import Api
from tests.integration.retail_agent import serve_model

pytestmark = pytest.mark.integration

SPANISH = "Hola, ¿cuándo llega mi pedido? Lo pedí hace una semana."
FRENCH = "Bonjour, je voudrais savoir quand ma commande arrivera, s'il vous plaît."
_ASKED = re.compile(r"Reply in the customer's language \(([^)]+)\)")
_NAMES = {"Spanish": "es", "French": "fr"}
LANGUAGE_NOTE = "whatever the language"


def text_of(message: Any) -> str:
    return message.content if isinstance(message.content, str) else str(message.content)


def plays_every_part(request: ModelRequest) -> ModelResponse:
    """The agent (answers in the language its prompt asks for), the simulated customer (writes
    in the language its brief gives) and the judge (an assertion "...answered in <language>"
    holds when the agent's lines carry that language and the judge was told the languages
    may differ)."""
    system = " ".join(text_of(m) for m in request.messages if m.role == "system")
    user = " ".join(text_of(m) for m in request.messages if m.role == "user")
    if request.schema_name == "judgement":
        language = next(code for name, code in _NAMES.items() if name in user)
        holds = LANGUAGE_NOTE in system and f"[{language}]" in user
        return structured({"reasoning": "The agent's lines show it.", "holds": holds})
    if request.response_schema is not None:
        return echo_answer(request)
    if "write every message in French" in system:
        spoken = [m for m in request.messages if m.role == "assistant"]
        return reply(FRENCH if not spoken else "Merci beaucoup ! ###STOP###")
    asked = _ASKED.search(system)
    return reply(f"[{asked.group(1) if asked else 'none'}] Llega mañana. / Elle arrive demain.")


def scenario(scenario_id: str, language: str, **fields: Any) -> dict[str, Any]:
    name = next(name for name, code in _NAMES.items() if code == language)
    return {
        "id": scenario_id,
        "title": f"A customer who writes {name}",
        "customer": {
            "persona": "A customer of the shop.",
            "goal": "Learn when the order arrives.",
            "language": language,
        },
        "assertions": {"judge": [f"The agent answered the customer in {name}."]},
        "max_turns": 3,
        **fields,
    }


def test_scenarios_run_in_the_customers_language(api: Api) -> None:
    agent_id = echo_agent(api, languages=["en", "es", "fr"])
    serve_model(api, ECHO_MODEL, FunctionModel(plays_every_part, name=ECHO_MODEL))
    suite = {
        "name": "languages",
        "scenarios": [
            scenario("scripted_spanish", "es", script=[SPANISH]),
            scenario("simulated_french", "fr"),
        ],
    }
    created = api.client.post(
        "/v1/sandbox/runs",
        json={"agent_id": agent_id, "suite": suite, "model": ECHO_MODEL},
        headers=api.headers(),
    )
    assert created.status_code == 202, created.text
    run_id = created.json()["id"]
    deadline = time.monotonic() + 120
    while (run := api.client.get(f"/v1/sandbox/runs/{run_id}", headers=api.headers()).json())[
        "status"
    ] in ("queued", "running"):
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    assert run["status"] == "succeeded", run
    trials = api.client.get(f"/v1/sandbox/runs/{run_id}/trials", headers=api.headers()).json()[
        "data"
    ]
    by_scenario = {trial["scenario_id"]: trial for trial in trials}
    for scenario_id, language, opening in (
        ("scripted_spanish", "es", SPANISH),
        ("simulated_french", "fr", FRENCH),
    ):
        trial = by_scenario[scenario_id]
        spoken = [(m["role"], m["text"]) for m in trial["transcript"] if m["role"] != "event"]
        assert ("customer", opening) in spoken, spoken
        agent_lines = [text for role, text in spoken if role == "agent"]
        assert agent_lines and all(t.startswith(f"[{language}]") for t in agent_lines), spoken
        judged = [c for c in trial["checks"] if c["kind"] == "nl_assertion"]
        assert [c["passed"] for c in judged] == [True], trial["checks"]
        assert trial["passed"], trial
