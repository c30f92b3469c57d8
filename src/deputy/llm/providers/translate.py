"""Our request/response vocabulary to pydantic-ai's model-request level and back, and
pydantic-ai's errors to ours."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic_ai import exceptions as pai_errors
from pydantic_ai import messages as pai
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.output import OutputObjectDefinition
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition as PaiToolDefinition

from deputy.domain.errors import DeputyError
from deputy.llm.errors import ModelError, ModelOutputInvalid, ModelUnavailable
from deputy.llm.resilience import ProviderRefused
from deputy.llm.structured import plain_json
from deputy.llm.types import (
    FinishReason,
    Message,
    ModelRequest,
    ModelResponse,
    ToolCall,
    Usage,
)

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_call": "tool_calls",
}
_TRANSIENT_STATUS = frozenset({408, 409, 425, 429})


def to_messages(messages: Sequence[Message]) -> list[pai.ModelMessage]:
    """Consecutive system/user/tool messages become one request; each assistant message a
    response. A tool result is paired with its call's tool name through the call id."""
    tool_names = {call.id: call.name for m in messages for call in m.tool_calls}
    out: list[pai.ModelMessage] = []
    parts: list[pai.ModelRequestPart] = []
    for message in messages:
        if message.role == "assistant":
            if parts:
                out.append(pai.ModelRequest(parts=parts))
                parts = []
            response_parts: list[pai.ModelResponsePart] = []
            if message.content:
                response_parts.append(pai.TextPart(message.content))
            response_parts.extend(
                pai.ToolCallPart(call.name, plain_json(call.arguments), tool_call_id=call.id)
                for call in message.tool_calls
            )
            out.append(pai.ModelResponse(parts=response_parts or [pai.TextPart("")]))
        elif message.role == "system":
            parts.append(pai.SystemPromptPart(message.content))
        elif message.role == "user":
            parts.append(pai.UserPromptPart(message.content))
        else:
            call_id = message.tool_call_id or ""
            parts.append(
                pai.ToolReturnPart(
                    tool_name=tool_names.get(call_id, "tool"),
                    content=message.content,
                    tool_call_id=call_id,
                )
            )
    if parts:
        out.append(pai.ModelRequest(parts=parts))
    return out


def to_parameters(request: ModelRequest, *, native_json_schema: bool) -> ModelRequestParameters:
    tools = [
        PaiToolDefinition(
            name=tool.name,
            description=tool.description,
            parameters_json_schema=plain_json(tool.parameters),
        )
        for tool in request.tools
    ]
    if request.response_schema is None:
        return ModelRequestParameters(
            function_tools=tools, output_mode="text", allow_text_output=True
        )
    output = OutputObjectDefinition(
        json_schema=plain_json(request.response_schema), name=request.schema_name
    )
    return ModelRequestParameters(
        function_tools=tools,
        # "prompted": the schema goes into the instructions and the reply is validated above us
        output_mode="native" if native_json_schema else "prompted",
        output_object=output,
        allow_text_output=True,
    )


def to_settings(request: ModelRequest, *, timeout: float | None) -> ModelSettings:
    """Retrying is ours (`ResilientModel`), so the provider SDK makes a single attempt."""
    settings = ModelSettings(max_retries=0)
    if timeout is not None:
        settings["timeout"] = timeout
    if request.max_tokens is not None:
        settings["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        settings["temperature"] = request.temperature
    if request.seed is not None:
        settings["seed"] = request.seed
    if request.stop:
        settings["stop_sequences"] = list(request.stop)
    if request.tools:
        settings["tool_choice"] = request.tool_choice
    return settings


def from_response(
    response: pai.ModelResponse, *, model: str, has_schema: bool, latency: float
) -> ModelResponse:
    text = "".join(part.content for part in response.parts if isinstance(part, pai.TextPart))
    calls = []
    for part in response.parts:
        if isinstance(part, pai.ToolCallPart):
            try:
                arguments = part.args_as_dict(raise_if_invalid=True)
            except (ValueError, AssertionError) as exc:
                raise ModelOutputInvalid(
                    f"{model} called {part.tool_name} with arguments that are not a JSON object",
                    details={"tool": part.tool_name, "arguments": str(part.args)[:500]},
                ) from exc
            calls.append(ToolCall(id=part.tool_call_id, name=part.tool_name, arguments=arguments))
    finish = _FINISH.get(response.finish_reason or "", "stop")
    if calls and finish == "stop":
        finish = "tool_calls"
    parsed: Any = None
    if has_schema and text.strip() and not calls:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None  # StructuredModel reports it and asks again
    usage = response.usage
    return ModelResponse(
        model=model,
        text=text,
        tool_calls=tuple(calls),
        parsed=parsed,
        usage=Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cache_read_tokens,
        ),
        finish_reason=finish,
        latency_seconds=latency,
    )


def from_error(error: BaseException, *, model: str) -> DeputyError:
    """Our typed error for a failure of pydantic-ai or the provider SDK below it."""
    if isinstance(error, DeputyError):
        return error
    detail = str(error) or type(error).__name__
    if isinstance(error, pai_errors.ModelAPIError):
        retry_after = error.retry_after
        if isinstance(
            error, pai_errors.ModelQuotaExceededError | pai_errors.ModelAuthenticationError
        ):
            return ProviderRefused(f"{model}: {detail}")
        if isinstance(error, pai_errors.ModelNotFoundError):
            return ProviderRefused(f"{model}: the provider does not know this model ({detail})")
        if isinstance(
            error,
            pai_errors.ModelRateLimitError
            | pai_errors.ModelUnavailableError
            | pai_errors.ModelServerError
            | pai_errors.ModelConnectionError
            | pai_errors.ModelRequestTimeout,
        ):
            return ModelUnavailable(f"{model}: {detail}", retry_after=retry_after)
        if isinstance(error, pai_errors.ModelContextWindowExceededError):
            return ModelError(
                f"{model}: the conversation is longer than the model's context: {detail}"
            )
        if isinstance(error, pai_errors.ModelHTTPError) and (
            error.status_code in _TRANSIENT_STATUS or error.status_code >= 500
        ):
            return ModelUnavailable(f"{model}: {detail}", retry_after=retry_after)
        return ModelError(f"{model}: the provider rejected the request: {detail}")
    if isinstance(error, pai_errors.OutputTokenLimitExceeded):
        return ModelOutputInvalid(f"{model}: the reply was cut off at the token limit: {detail}")
    if isinstance(error, pai_errors.UnexpectedModelBehavior):
        return ModelError(f"{model}: unexpected reply: {detail}")
    if isinstance(error, pai_errors.UserError):
        return ModelError(f"{model}: cannot send this request: {detail}")
    return ModelError(f"{model}: {type(error).__name__}: {detail}")
