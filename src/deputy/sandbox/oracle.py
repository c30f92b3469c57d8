"""The oracle: an agent that performs a scenario's reference actions through the platform's tool
layer, to prove that the harness, the backend and the evaluator agree with the ground truth (its
DB check must pass on every task, and fail when one write is skipped).

- `oracle_spec`: a reasoning-mode agent whose tools are the backend's operations;
- `ReferenceActionsModel`: a scripted model that asks for the next reference action, then says
  `FINAL_REPLY`. It works out what was already done from the request alone (the tool calls and
  results in the history and in the current turn), so it survives many turns, the runtime's
  per-turn step limit and confirmations: an irreversible call is refused until the customer
  confirms, then the runtime itself runs exactly that call, and the model moves on;
- `OracleCustomer`: a scripted customer that asks once, says yes to confirmations, lets the
  agent go on otherwise, and stops at the final reply."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence

from deputy.domain.sandbox_results import TranscriptMessage
from deputy.domain.scenarios import ToolCallExpectation
from deputy.domain.spec import ID_PATTERN, AgentSpec, Escalation, Guardrails, OpenAPIBinding, Tool
from deputy.llm.types import (
    Message,
    ModelCapabilities,
    ModelRequest,
    ModelResponse,
    StreamChunk,
    ToolCall,
)
from deputy.sandbox.ports import CustomerTurn
from deputy.tools.base import ToolDefinition
from deputy.tools.confirmation import canonical_json

FINAL_REPLY = "All done."
OPENING = "Hello, I need help with my request."
GO_ON = "Please go on."
YES = "yes"
GOODBYE = "Thank you, goodbye."
MODEL_NAME = "oracle:reference-actions"
ORACLE_CAPABILITIES = ModelCapabilities(
    native_tools=True, native_json_schema=True, context_tokens=1_000_000
)
"""Native tool calls, like the test fakes, and a window large enough that the runtime never
summarises the history away: the model must see every earlier call."""
ORACLE_GOAL = (
    "Perform a scenario's reference actions through the tool layer, to prove the sandbox "
    "harness, the backend and the evaluator agree with the scenario's ground truth."
)

_EXCLUDED = re.compile(r"^(admin_\w*|(get_)?health(z|_?check)?)$", re.IGNORECASE)
_IDENTIFIER = re.compile(ID_PATTERN)
_RESULT_TAG = re.compile(r'^<tool_result tool="[^"]*" status="(\w+)"(?: code="(\w+)")?')
_ASKS_CONFIRMATION = re.compile(r"\(yes/no\)|\bconfirm", re.IGNORECASE)


def oracle_spec(
    document_tools: Sequence[ToolDefinition], *, source: str = "backend", name: str = "oracle"
) -> AgentSpec:
    """A reasoning-mode agent over every operation of the backend's document (`admin_*` and
    health checks left out), bound as OpenAPI operations of `source` with the operation's own
    effect tier, under the `minimal` guardrails. Operations whose names are not identifiers are
    left out too: a reference action names its tool by the operation. Turns that end at the
    step limit count as failed, so many may come in a row: escalation waits for the most."""
    tools = tuple(
        Tool(
            name=definition.operation,
            description=definition.description[:2000],
            effect=definition.effect,
            binding=OpenAPIBinding(source=source, operation=definition.operation),
        )
        for definition in document_tools
        if _IDENTIFIER.match(definition.operation) and not _EXCLUDED.search(definition.operation)
    )
    if not tools:
        raise ValueError("the document has no operation the oracle could call")
    return AgentSpec(
        name=name,
        goal=ORACLE_GOAL,
        mode="reasoning",
        tools=tools,
        guardrails=Guardrails(preset="minimal"),
        escalation=Escalation(after_failed_turns=20),
    )


def performed(actions: Sequence[ToolCallExpectation], messages: Sequence[Message]) -> int:
    """How many of `actions`, in order, the conversation in `messages` already carried out: a
    tool call of the next action's tool with its (canonical) arguments that got a result. A call
    refused for want of the customer's confirmation does not count (the runtime runs the
    confirmed call itself, and that one does); any other result does, failures included (tau2
    ignores a failing reference action too)."""
    calls: dict[str, ToolCall] = {}
    done = 0
    for message in messages:
        for call in message.tool_calls:
            calls[call.id] = call
        if message.role != "tool" or done >= len(actions):
            continue
        made = calls.get(message.tool_call_id or "")
        if made is None or _awaits_confirmation(message.content):
            continue
        action = actions[done]
        if made.name == action.tool and canonical_json(made.arguments) == canonical_json(
            action.arguments
        ):
            done += 1
    return done


def _awaits_confirmation(result: str) -> bool:
    tag = _RESULT_TAG.match(result)
    return tag is not None and tag.groups() == ("refused", "confirmation_required")


class ReferenceActionsModel:
    """A `Model` that asks for `actions` one by one as native tool calls (all arguments), then
    replies `FINAL_REPLY`. `skip` leaves one action out (by index), to prove the DB check fails
    when a step is missing."""

    def __init__(self, actions: Sequence[ToolCallExpectation], *, skip: int | None = None) -> None:
        if skip is not None and not 0 <= skip < len(actions):
            raise ValueError(f"skip={skip} is not the index of one of {len(actions)} actions")
        self.actions = tuple(action for index, action in enumerate(actions) if index != skip)

    @property
    def name(self) -> str:
        return MODEL_NAME

    @property
    def capabilities(self) -> ModelCapabilities:
        return ORACLE_CAPABILITIES

    async def request(self, request: ModelRequest) -> ModelResponse:
        done = performed(self.actions, request.messages)
        if not request.tools:  # a summary of the history: say how far the work is
            text = f"{done} of {len(self.actions)} reference actions were carried out."
            return ModelResponse(model=MODEL_NAME, text=text)
        if done >= len(self.actions):
            return ModelResponse(model=MODEL_NAME, text=FINAL_REPLY)
        action = self.actions[done]
        call = ToolCall(
            id=f"oracle_{done}_{len(request.messages)}",
            name=action.tool,
            arguments=dict(action.arguments),
        )
        return ModelResponse(model=MODEL_NAME, tool_calls=(call,), finish_reason="tool_calls")

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        response = await self.request(request)
        if response.text:
            yield StreamChunk(text=response.text)
        yield StreamChunk(response=response)


class OracleCustomer:
    """A scripted `Customer` for the oracle agent: `opening` first, `yes` to a confirmation
    question, `GO_ON` otherwise; it stops once the agent's last line is `FINAL_REPLY`, and gives
    up (stops) after `max_messages` messages of its own."""

    def __init__(self, *, opening: str = OPENING, max_messages: int = 60) -> None:
        self.opening = opening
        self.max_messages = max_messages

    async def next(self, transcript: Sequence[TranscriptMessage]) -> CustomerTurn:
        said = sum(1 for line in transcript if line.role == "customer")
        if said == 0:
            return CustomerTurn(self.opening)
        replies = [line.text for line in transcript if line.role == "agent"]
        last = replies[-1].strip() if replies else ""
        if last == FINAL_REPLY or said >= self.max_messages:
            return CustomerTurn(GOODBYE, stop="stop")
        if _ASKS_CONFIRMATION.search(last):
            return CustomerTurn(YES)
        return CustomerTurn(GO_ON)
