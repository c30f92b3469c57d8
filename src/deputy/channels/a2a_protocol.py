"""The A2A protocol (agent-to-agent, `a2a-sdk` types) as Deputy speaks it: each deployed agent's
agent card, and a Deputy turn as an A2A task.

Mapping: an A2A *context* is a Deputy conversation (its id is the conversation id), an A2A
*task* is one turn (its id is the turn id): the caller's message is the customer's message, the
agent's messages are the task's status message and its `reply` artifact. A task is `working`
while the turn runs and `completed` (or `failed`) when it ends; the next message in the same
context is a new task of the same conversation. Only text parts are accepted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    Artifact,
    HTTPAuthSecurityScheme,
    Message,
    Part,
    Role,
    SecurityRequirement,
    SecurityScheme,
    StringList,
    Task,
    TaskState,
    TaskStatus,
)
from a2a.utils.constants import PROTOCOL_VERSION_0_3, PROTOCOL_VERSION_1_0, TransportProtocol
from a2a.utils.errors import InvalidParamsError

from deputy.domain.spec import AgentSpec

SECURITY_SCHEME = "deputyApiKey"
TEXT = "text/plain"
REPLY_ARTIFACT = "reply"
TurnStatus = Literal["pending", "running", "completed", "failed"]

STATES: dict[str, TaskState] = {
    "pending": TaskState.TASK_STATE_SUBMITTED,
    "running": TaskState.TASK_STATE_WORKING,
    "completed": TaskState.TASK_STATE_COMPLETED,
    "failed": TaskState.TASK_STATE_FAILED,
}
TERMINAL = frozenset({TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED})


def agent_card(name: str, spec: AgentSpec, version: int, url: str) -> AgentCard:
    """The card of a deployed agent: its goal as the description, one skill per procedure,
    JSON-RPC at `url` (protocol 1.0, and 0.3 for older clients), streaming, and a Deputy API
    key as the bearer token."""
    description = spec.goal
    if spec.persona.description:
        description = f"{spec.persona.description}\n\n{spec.goal}"
    skills = [
        AgentSkill(
            id=procedure.id,
            name=procedure.title,
            description=procedure.when,
            tags=["procedure"],
            input_modes=[TEXT],
            output_modes=[TEXT],
        )
        for procedure in spec.procedures
    ]
    if not skills:
        skills = [AgentSkill(id="conversation", name=spec.name, description=spec.goal,
                             tags=["conversation"])]  # fmt: skip
    return AgentCard(
        name=name,
        description=description,
        version=str(version),
        provider=AgentProvider(organization="Deputy", url=url),
        supported_interfaces=[
            AgentInterface(
                url=url,
                protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=version_tag,
            )
            for version_tag in (PROTOCOL_VERSION_1_0, PROTOCOL_VERSION_0_3)
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        security_schemes={
            SECURITY_SCHEME: SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="bearer",
                    bearer_format="Deputy API key",
                    description="A Deputy API key that may talk to this agent.",
                )
            )
        },
        security_requirements=[SecurityRequirement(schemes={SECURITY_SCHEME: StringList()})],
        default_input_modes=[TEXT],
        default_output_modes=[TEXT],
        skills=skills,
    )


def message_text(message: Message) -> str:
    """The text of a caller's message (its text parts, joined); other parts are refused."""
    texts = []
    for index, part in enumerate(message.parts):
        if part.WhichOneof("content") != "text":
            raise InvalidParamsError(
                message=f"message part {index} is not text: only text parts are accepted"
            )
        texts.append(part.text)
    text = "\n".join(texts).strip()
    if not text:
        raise InvalidParamsError(message="the message has no text")
    return text


@dataclass(frozen=True)
class Said:
    """One message of a turn: the customer's (`user`) or the agent's."""

    id: str
    role: Literal["user", "agent"]
    text: str


@dataclass(frozen=True)
class TurnView:
    """A turn as a task is made of it."""

    turn_id: str
    conversation_id: str
    status: TurnStatus
    messages: tuple[Said, ...]
    updated_at: datetime
    error: str | None = None


def a2a_message(said: Said, conversation_id: str, turn_id: str) -> Message:
    return Message(
        message_id=said.id,
        context_id=conversation_id,
        task_id=turn_id,
        role=Role.ROLE_USER if said.role == "user" else Role.ROLE_AGENT,
        parts=[Part(text=said.text, media_type=TEXT)],
    )


def status_of(view: TurnView) -> TaskStatus:
    """The task's status: its state, with the agent's last message (or why it failed)."""
    state = STATES[view.status]
    status = TaskStatus(state=state)
    status.timestamp.FromDatetime(view.updated_at)
    replies = [s for s in view.messages if s.role == "agent"]
    if replies:
        status.message.CopyFrom(a2a_message(replies[-1], view.conversation_id, view.turn_id))
    elif view.status == "failed":
        failure = Said(f"{view.turn_id}-failure", "agent", view.error or "the turn failed")
        status.message.CopyFrom(a2a_message(failure, view.conversation_id, view.turn_id))
    return status


def reply_artifact(turn_id: str, texts: Sequence[str]) -> Artifact:
    return Artifact(
        artifact_id=f"{turn_id}-{REPLY_ARTIFACT}",
        name=REPLY_ARTIFACT,
        parts=[Part(text=text, media_type=TEXT) for text in texts],
    )


def task_of(view: TurnView, history_length: int | None = None) -> Task:
    """The task a turn is: the customer's and agent's messages as its history (the last
    `history_length`, when given), the agent's messages as its `reply` artifact."""
    history = [a2a_message(s, view.conversation_id, view.turn_id) for s in view.messages]
    if history_length is not None:
        history = history[-history_length:] if history_length > 0 else []
    replies = [s.text for s in view.messages if s.role == "agent"]
    return Task(
        id=view.turn_id,
        context_id=view.conversation_id,
        status=status_of(view),
        history=history,
        artifacts=[reply_artifact(view.turn_id, replies)] if replies else [],
    )
