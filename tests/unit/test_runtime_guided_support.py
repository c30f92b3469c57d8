"""What the guided-mode unit tests share: the retail spec, a small fake retail backend behind a
real `ToolExecutor` (FakeToolSource + InMemoryCallLedger), a scripted "brain" that answers the
engine's constrained questions by their schema, and a conversation driver that runs turns the
way the turn orchestrator does (a journal per turn, the state carried between turns)."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deputy.domain.spec import AgentSpec, load_spec
from deputy.guardrails import InputGuard, preset_settings
from deputy.llm.types import Model, ModelRequest, ModelResponse
from deputy.runtime.context import ConversationRef, TurnContext, TurnInput
from deputy.runtime.draft import Draft
from deputy.runtime.guided import run_guided
from deputy.runtime.journal import Entry, RecordedEntry
from deputy.runtime.ports import NoKnowledge, Retriever, ToolRunner
from deputy.runtime.state import AgentState
from deputy.testing import FunctionModel, structured
from deputy.testing.runtime import CollectingSink, InMemoryJournal
from deputy.testing.tools import FakeToolSource, InMemoryCallLedger, answer
from deputy.tools.base import Invocation, InvocationResult, ToolDefinition
from deputy.tools.executor import ToolExecutor

REPO = Path(__file__).resolve().parents[2]
RETAIL = load_spec((REPO / "examples" / "specs" / "retail_support.yaml").read_text())

EMAIL = "ava.moore@example.com"
USER = "ava_moore_2033"
DELIVERED = "#W4817420"
PENDING = "#W5918442"
BOTTLE = "6777246137"
GLASS_BOTTLE = "4579334072"
GIFT_CARD = "gift_card_8168843"


def _object(properties: Mapping[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(required),
        "additionalProperties": False,
    }


TEXT = {"type": "string"}
IDS = {"type": "array", "items": {"type": "string"}}
SCHEMAS: dict[str, tuple[dict[str, Any], str]] = {
    "find_user_id_by_email": (_object({"email": TEXT}, ("email",)), "read"),
    "find_user_id_by_name_zip": (
        _object({"first_name": TEXT, "last_name": TEXT, "zip": TEXT}, ("first_name", "zip")),
        "read",
    ),
    "get_user_details": (_object({"user_id": TEXT}, ("user_id",)), "read"),
    "get_order_details": (_object({"order_id": TEXT}, ("order_id",)), "read"),
    "cancel_pending_order": (
        _object({"order_id": TEXT, "reason": TEXT}, ("order_id", "reason")),
        "irreversible",
    ),
    "return_delivered_order_items": (
        _object(
            {"order_id": TEXT, "item_ids": IDS, "payment_method_id": TEXT},
            ("order_id", "item_ids", "payment_method_id"),
        ),
        "irreversible",
    ),
    "exchange_delivered_order_items": (
        _object(
            {"order_id": TEXT, "item_ids": IDS, "new_item_ids": IDS, "payment_method_id": TEXT},
            ("order_id", "item_ids", "new_item_ids", "payment_method_id"),
        ),
        "irreversible",
    ),
    "transfer_to_human_agents": (_object({"summary": TEXT}, ("summary",)), "write"),
}


def initial_db() -> dict[str, Any]:
    return {
        "users": {
            USER: {
                "user_id": USER,
                "email": EMAIL,
                "payment_methods": {GIFT_CARD: {"source": "gift_card", "balance": 50.0}},
                "orders": [DELIVERED, PENDING],
            }
        },
        "orders": {
            DELIVERED: {
                "order_id": DELIVERED,
                "user_id": USER,
                "status": "delivered",
                "items": [{"item_id": BOTTLE, "product_id": "8310926033", "price": 24.5}],
            },
            PENDING: {
                "order_id": PENDING,
                "user_id": USER,
                "status": "pending",
                "items": [{"item_id": "1008292230", "product_id": "7363354090", "price": 99.0}],
            },
        },
    }


@dataclass
class Backend:
    """The fake store: operations change `db` like the real retail backend does."""

    db: dict[str, Any] = field(default_factory=initial_db)
    source: FakeToolSource = field(init=False)

    def __post_init__(self) -> None:
        handlers: dict[str, Callable[[Invocation], InvocationResult]] = {
            "find_user_id_by_email": self._find,
            "get_user_details": lambda i: self._get("users", i.arguments["user_id"]),
            "get_order_details": lambda i: self._get("orders", i.arguments["order_id"]),
            "cancel_pending_order": lambda i: self._change(i, "pending", "cancelled"),
            "return_delivered_order_items": lambda i: self._change(
                i, "delivered", "return requested"
            ),
            "exchange_delivered_order_items": lambda i: self._change(
                i, "delivered", "exchange requested"
            ),
            "transfer_to_human_agents": lambda i: answer("Transfer successful"),
        }
        definitions = [
            ToolDefinition(name, name.replace("_", " "), schema, effect)  # type: ignore[arg-type]
            for name, (schema, effect) in SCHEMAS.items()
        ]
        self.source = FakeToolSource(definitions, handlers=dict(handlers))

    def _find(self, invocation: Invocation) -> InvocationResult:
        email = str(invocation.arguments["email"]).lower()
        for user_id, user in self.db["users"].items():
            if user["email"] == email:
                return answer(user_id)
        return answer({"error": "User not found"}, ok=False, status=404)

    def _get(self, table: str, key: str) -> InvocationResult:
        row = self.db[table].get(key)
        if row is None:
            return answer({"error": "not found"}, ok=False, status=404)
        return answer(copy.deepcopy(row))

    def _change(self, invocation: Invocation, before: str, after: str) -> InvocationResult:
        order = self.db["orders"].get(invocation.arguments["order_id"])
        if order is None or order["status"] != before:
            return answer({"error": f"the order is not {before}"}, ok=False, status=400)
        order["status"] = after
        return answer(copy.deepcopy(order))

    def executed(self, operation: str) -> list[Mapping[str, Any]]:
        return self.source.executed(operation)


Answerer = Callable[[ModelRequest], Any]


@dataclass
class Brain:
    """Answers the engine's questions by their schema name: `route` with a procedure id,
    `slots` with the values of the asked fields it knows (others null), `check` by the first
    phrase of `checks` found in the question, `translation` and `confirmation` by function."""

    route: str = "none"
    slots: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    translation: Callable[[str], str] = lambda text: text
    confirmation: str = "unclear"
    asked: list[tuple[str, str]] = field(default_factory=list)
    """(schema name, the question's last message) of every request."""

    def answer(self, request: ModelRequest) -> ModelResponse:
        question = request.messages[-1].content
        name = request.schema_name
        self.asked.append((name, question))
        if name == "route":
            return structured({"procedure": self.route})
        if name == "slots":
            assert request.response_schema is not None
            wanted = request.response_schema["properties"]
            return structured({slot: self.slots.get(slot) for slot in wanted})
        if name == "check":
            verdict = next((v for phrase, v in self.checks.items() if phrase in question), None)
            assert verdict is not None, f"no scripted answer for the check: {question}"
            return structured({"evidence": "", "answer": verdict})
        if name == "translation":
            return structured({"text": self.translation(question)})
        if name == "confirmation":
            return structured({"answer": self.confirmation})
        raise AssertionError(f"unexpected question {name}: {question}")

    def model(self) -> FunctionModel:
        return FunctionModel(self.answer)

    def questions(self, name: str) -> list[str]:
        return [q for n, q in self.asked if n == name]


class Conversation:
    """Turns of one conversation against `spec`, as the orchestrator runs them."""

    def __init__(
        self,
        model: Model,
        spec: AgentSpec = RETAIL,
        *,
        backend: Backend | None = None,
        tools: ToolRunner | None = None,
        retriever: Retriever | None = None,
        state: AgentState | None = None,
        runner: asyncio.Runner | None = None,
    ) -> None:
        """`runner`: the event loop to run turns on (clients that keep connections need one)."""
        self.run: Callable[[Coroutine[Any, Any, Any]], Any] = (
            runner.run if runner is not None else asyncio.run
        )
        self.model = model
        self.spec = spec
        self.backend = backend or Backend()
        self.ledger = InMemoryCallLedger()
        self.tools = tools or ToolExecutor(spec, {"retail": self.backend.source}, self.ledger)
        self.retriever = retriever or NoKnowledge()
        self.journal = InMemoryJournal()
        self.state = state or AgentState()
        self.history: list[RecordedEntry] = []
        self.contexts: list[TurnContext] = []

    def context(self, text: str, state: AgentState, turn_id: str) -> TurnContext:
        self.journal.start_turn(turn_id)
        inbound = self.journal.recorded("inbound") or self.run(
            self.journal.append(Entry("customer_message", "inbound", text))
        )
        turn = TurnInput(
            conversation=ConversationRef("ws_1", "agt_1", "conv_1"),
            spec=self.spec,
            state=state,
            inbound=inbound,
            turn_id=turn_id,
            history=tuple(self.history),
        )
        ctx = TurnContext(
            turn,
            model=self.model,
            tools=self.tools,
            retriever=self.retriever,
            journal=self.journal,
            input_guard=InputGuard(preset_settings("minimal")),
            sink=CollectingSink(),
        )
        self.contexts.append(ctx)
        return ctx

    def start(self, text: str) -> tuple[TurnContext, AgentState]:
        """The context of the next turn and the state it starts from (for re-runs)."""
        state = self.state.model_copy(update={"turn": self.state.turn + 1}, deep=True)
        return self.context(text, state, f"turn_{state.turn}"), state

    def say(self, text: str) -> Draft:
        ctx, _ = self.start(text)
        return self.finish(ctx, self.run(run_guided(ctx)))

    def finish(self, ctx: TurnContext, draft: Draft) -> Draft:
        self.state = ctx.state
        self.run(self.journal.append(Entry("agent_message", "reply", draft.text)))
        self.history.extend(self.journal.turn_entries())
        return draft

    def entries(self, kind: str) -> list[RecordedEntry]:
        return [e for e in self.journal.entries if e.kind == kind]

    def steps(self) -> list[str]:
        """The path taken: `procedure/step` of every step entered (not resumed)."""
        return [
            f"{e.data['procedure']}/{e.data['step']}"
            for e in self.entries("procedure")
            if e.data["event"] == "step" and not e.data["resumed"]
        ]


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
