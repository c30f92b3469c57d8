"""Tool calling for models without reliable native tool calls (every local model).

The request's tools become one `oneOf` response schema: `{"action": "<tool>", "args": {…}}` per
tool, plus `{"action": "reply", "text": "…"}` (or `"response": {…}` when the request has its own
response schema). The model decodes under that schema (a grammar on local models), and the
result is mapped back to the same `ToolCall` objects a native provider returns, with generated
ids, so callers cannot tell the difference. Earlier tool calls and results in the conversation
are rewritten into the same format, since such models' chat templates may not know tool roles."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from deputy.llm.errors import ModelOutputInvalid
from deputy.llm.structured import StructuredModel, StructuredPolicy, decode, plain_json
from deputy.llm.types import (
    Message,
    Model,
    ModelCapabilities,
    ModelRequest,
    ModelResponse,
    StreamChunk,
    ToolCall,
    ToolDefinition,
)

ACTION_SCHEMA_NAME = "action"
_REPLY_NAMES = ("reply", "reply_to_user", "final_reply")


def new_tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True, slots=True)
class ActionFormat:
    """The action schema and prompt for one request's tools."""

    schema: dict[str, Any]
    instructions: str
    reply_action: str
    reply_key: str  # "text", or "response" when the reply follows the request's own schema


def reply_action_name(tools: Sequence[ToolDefinition]) -> str:
    taken = {tool.name for tool in tools}
    for name in _REPLY_NAMES:
        if name not in taken:
            return name
    raise ValueError("the tools use every reply action name")


def action_format(
    tools: Sequence[ToolDefinition],
    *,
    response_schema: Mapping[str, Any] | None = None,
    require_tool: bool = False,
) -> ActionFormat:
    """The `oneOf` schema over the tools' actions (and the reply action unless a tool call is
    required), with the instructions that explain it to the model."""
    reply_action = reply_action_name(tools)
    reply_key = "response" if response_schema is not None else "text"
    definitions: dict[str, Any] = {}
    branches: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        args = _embed(plain_json(tool.parameters) or {"type": "object"}, f"t{index}_", definitions)
        branches.append(_branch(tool.name, "args", args))
    if not require_tool:
        reply: dict[str, Any] = (
            _embed(plain_json(response_schema), "reply_", definitions)
            if response_schema is not None
            else {"type": "string"}
        )
        branches.append(_branch(reply_action, reply_key, reply))
    schema: dict[str, Any] = {"oneOf": branches} if len(branches) > 1 else branches[0]
    if definitions:
        schema = {**schema, "$defs": definitions}
    return ActionFormat(
        schema=schema,
        instructions=_instructions(tools, reply_action, reply_key, require_tool),
        reply_action=reply_action,
        reply_key=reply_key,
    )


def _branch(action: str, key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"action": {"const": action}, key: value},
        "required": ["action", key],
        "additionalProperties": False,
    }


def _embed(schema: dict[str, Any], prefix: str, definitions: dict[str, Any]) -> dict[str, Any]:
    """Move `schema`'s local definitions to the root under `prefix`, rewriting its references."""
    local: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        for name, value in (schema.pop(key, None) or {}).items():
            local[f"#/{key}/{name}"] = f"#/$defs/{prefix}{name}"
            definitions[f"{prefix}{name}"] = value

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if isinstance(node, dict):
            out = {key: rewrite(value) for key, value in node.items()}
            ref = node.get("$ref")
            if isinstance(ref, str):
                for old, new in local.items():
                    if ref == old or ref.startswith(old + "/"):
                        out["$ref"] = new + ref[len(old) :]
            return out
        return node

    for name in [name for name in definitions if name.startswith(prefix)]:
        definitions[name] = rewrite(definitions[name])
    return rewrite(schema)  # type: ignore[no-any-return]


def _instructions(
    tools: Sequence[ToolDefinition], reply_action: str, reply_key: str, require_tool: bool
) -> str:
    lines = ["You can use these tools:"] if tools else []
    for tool in tools:
        lines.append(f"- {tool.name}: {tool.description}".rstrip(": "))
        lines.append(f"  args: {json.dumps(tool.parameters, separators=(',', ':'), default=dict)}")
    lines.append("Answer with exactly one JSON object and nothing else:")
    if tools:
        lines.append('- to use a tool: {"action": "<tool name>", "args": {<its arguments>}}')
    if require_tool:
        lines.append("You must use one of the tools now.")
    elif reply_key == "text":
        lines.append(
            f'- to answer the user: {{"action": "{reply_action}", "text": "<your answer>"}}'
        )
    else:
        lines.append(
            f'- to give the final answer: {{"action": "{reply_action}", "response": {{…}}}} '
            "with the response in the required format"
        )
    if tools:
        lines.append("Use a tool only when you need its result; its result will be shown to you.")
    return "\n".join(lines)


def rewrite_history(messages: Sequence[Message], instructions: str | None) -> tuple[Message, ...]:
    """The conversation without tool roles: calls become the assistant's action JSON, results
    become user messages; `instructions` join the leading system message."""
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    out: list[Message] = []
    for message in messages:
        if message.role == "assistant" and message.tool_calls:
            actions = [
                json.dumps({"action": c.name, "args": c.arguments}, default=dict)
                for c in message.tool_calls
            ]
            rewritten = Message.assistant("\n".join(actions))
        elif message.role == "tool":
            name = names.get(message.tool_call_id or "", "a tool")
            rewritten = Message.user(f"Result of {name}:\n{message.content}")
        else:
            rewritten = Message(message.role, message.content)
        if out and rewritten.role == "user" and out[-1].role == "user":
            out[-1] = Message.user(f"{out[-1].content}\n\n{rewritten.content}")
        else:
            out.append(rewritten)
    if instructions:
        if out and out[0].role == "system":
            out[0] = Message.system(f"{out[0].content}\n\n{instructions}")
        else:
            out.insert(0, Message.system(instructions))
    return tuple(out)


class ActionModel:
    """Gives `model` tool calling through the action schema. Wrap a `StructuredModel` (as
    `with_tools` does) so that malformed actions are retried before they reach here."""

    def __init__(self, model: Model, *, id_factory: Callable[[], str] = new_tool_call_id) -> None:
        self.inner = model
        self._id_factory = id_factory

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def capabilities(self) -> ModelCapabilities:
        return self.inner.capabilities

    async def request(self, request: ModelRequest) -> ModelResponse:
        if not _uses_actions(request):
            return await self.inner.request(replace(request, tools=()))
        # With tool_choice "none" (or no tools left) after tool use, the reply is still decoded
        # as the reply action: a model shown action JSON in its history would otherwise answer
        # in that format as free text.
        offered = request.tools if request.tool_choice != "none" else ()
        fmt = action_format(
            offered,
            response_schema=request.response_schema,
            require_tool=bool(offered) and request.tool_choice == "required",
        )
        inner_request = replace(
            request,
            messages=rewrite_history(request.messages, fmt.instructions),
            tools=(),
            tool_choice="auto",
            response_schema=fmt.schema,
            schema_name=ACTION_SCHEMA_NAME,
        )
        response = await self.inner.request(inner_request)
        return self._to_response(response, fmt, request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        """Without tools, the inner stream; with tools the action is decoded whole, then sent
        as one text chunk (for a reply) and the final chunk."""
        if not _uses_actions(request):
            async for chunk in self.inner.stream(replace(request, tools=())):
                yield chunk
            return
        response = await self.request(request)
        if response.text:
            yield StreamChunk(text=response.text)
        yield StreamChunk(response=response)

    def _to_response(
        self, response: ModelResponse, fmt: ActionFormat, request: ModelRequest
    ) -> ModelResponse:
        value, problems = decode(response, fmt.schema)
        if problems or not isinstance(value, dict):
            raise ModelOutputInvalid(
                f"{self.name} did not produce a valid action: {'; '.join(problems[:5])}",
                details={"errors": problems[:5], "last_output": response.text[:500]},
            )
        action = value["action"]
        if action == fmt.reply_action:
            reply = value[fmt.reply_key]
            if fmt.reply_key == "text":
                return replace(response, text=reply, parsed=None, tool_calls=())
            return replace(
                response, text=json.dumps(reply, ensure_ascii=False), parsed=reply, tool_calls=()
            )
        call = ToolCall(id=self._id_factory(), name=action, arguments=value["args"])
        return replace(
            response, text="", parsed=None, tool_calls=(call,), finish_reason="tool_calls"
        )


def _uses_actions(request: ModelRequest) -> bool:
    """Tools are offered now, or were used earlier in the conversation."""
    offered = bool(request.tools) and request.tool_choice != "none"
    return offered or any(m.role == "tool" or m.tool_calls for m in request.messages)


def with_tools(model: Model, policy: StructuredPolicy | None = None) -> Model:
    """`model` itself if it calls tools natively, otherwise `model` behind the action adapter
    (and schema enforcement with bounded retries)."""
    if model.capabilities.native_tools or isinstance(model, ActionModel):
        return model
    structured = model if isinstance(model, StructuredModel) else StructuredModel(model, policy)
    return ActionModel(structured)
