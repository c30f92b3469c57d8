"""The OpenAI-compatible endpoint: `POST /v1/chat/completions` (JSON, or Server-Sent Events of
`chat.completion.chunk` with `stream: true`, ending with `data: [DONE]`) and the list of models
(the deployed agents the key can talk to).

The complete OpenAI base URL is `/v1/openai` (`/v1/openai/chat/completions`,
`/v1/openai/models`): `/v1/models` is the platform's model catalog, so an OpenAI client is
pointed at `OpenAI(base_url=f"{deputy}/v1/openai", api_key=<Deputy API key>)`.
`/v1/chat/completions` answers the same as `/v1/openai/chat/completions`.

Every error, authentication included, has OpenAI's shape (`{"error": {"message", "type",
"param", "code"}}`, plus Deputy's `request_id` and `details`). The conversation a request went
to is in the `X-Deputy-Conversation-Id` response header; sending it back (or
`metadata.conversation_id`) continues that conversation explicitly."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute

from deputy.api.deps import PlatformDep, PrincipalDep
from deputy.api.errors import STATUS_BY_CODE
from deputy.channels import openai_compat as oa
from deputy.domain.errors import DeputyError, ErrorCode
from deputy.domain.tenancy import Principal
from deputy.observability.context import current_request_id
from deputy.services import openai_compat as svc
from deputy.services.platform import Platform

CONVERSATION_HEADER = "X-Deputy-Conversation-Id"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def openai_error(
    code: ErrorCode, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    body = oa.error_object(code, message, request_id=current_request_id(), details=details)
    headers: dict[str, str] = {"X-Error-Code": code}
    if code == "unauthenticated":
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=STATUS_BY_CODE[code], headers=headers)


class OpenAIRoute(APIRoute):
    """A route whose errors (from its dependencies, body validation and the services) are
    answered in OpenAI's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except DeputyError as exc:
                return openai_error(exc.code, exc.message, exc.details)
            except RequestValidationError as exc:
                problems = [
                    {"loc": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")}
                    for e in exc.errors()
                ]
                first = problems[0]["loc"] if problems else None
                return openai_error(
                    "invalid_request",
                    "the request is not valid: "
                    + "; ".join(f"{p['loc']}: {p['message']}" for p in problems[:5]),
                    {"param": first, "errors": problems},
                )

        return handle


router = APIRouter(tags=["openai"], route_class=OpenAIRoute)

_CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A `chat.completion`; with `stream: true`, Server-Sent Events of "
        "`chat.completion.chunk` objects ending with `data: [DONE]`.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    },
    503: {"description": "The agent could not answer; the message is on record"},
}


def _sse(data: dict[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


async def _frames(
    events: AsyncGenerator[str | svc.Answer],
    first: str | svc.Answer,
    completion_id: str,
    model: str,
    include_usage: bool,
) -> AsyncIterator[str]:
    created = int(time.time())
    yield _sse(oa.chunk(completion_id, created, model, {"role": "assistant", "content": ""}))
    item: str | svc.Answer | None = first
    try:
        while item is not None:
            if isinstance(item, svc.Answer):
                yield _sse(oa.chunk(completion_id, created, model, {}, "stop"))
                if include_usage:
                    usage = oa.usage_object(item.prompt_tokens, item.completion_tokens)
                    yield _sse(oa.chunk(completion_id, created, model, {}, usage=usage))
                yield _sse("[DONE]")
                return
            yield _sse(oa.chunk(completion_id, created, model, {"content": item}))
            item = await anext(events, None)
    except DeputyError as exc:
        yield _sse(oa.error_object(exc.code, exc.message, request_id=None, details=exc.details))
    finally:
        await events.aclose()


async def _chat(
    body: oa.ChatCompletionRequest,
    platform: Platform,
    principal: Principal,
    conversation_id: str | None,
) -> Response:
    prepared = await svc.prepare(platform, principal, body, conversation_id)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    headers = {CONVERSATION_HEADER: prepared.conversation_id}
    if body.stream:
        events = svc.stream_answer(platform, principal, prepared)
        first = await anext(events)  # a turn that fails before replying is an error response
        include = bool(body.stream_options and body.stream_options.include_usage)
        frames = _frames(events, first, completion_id, prepared.model, include)
        return StreamingResponse(
            frames, media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
        )
    answer = await svc.answer(platform, principal, prepared)
    usage = oa.usage_object(answer.prompt_tokens, answer.completion_tokens)
    created = int(time.time())
    result = oa.completion(completion_id, created, prepared.model, answer.text, usage)
    return JSONResponse(result, headers=headers)


ConversationHeader = Annotated[
    str | None,
    Header(
        alias=CONVERSATION_HEADER,
        max_length=40,
        description="Continue this conversation (else the history finds or starts one).",
    ),
]


@router.post("/chat/completions", responses=_CHAT_RESPONSES, response_class=Response)
async def chat_completions(
    body: oa.ChatCompletionRequest,
    platform: PlatformDep,
    principal: PrincipalDep,
    conversation_id: ConversationHeader = None,
) -> Response:
    """Talk to a deployed agent as to an OpenAI chat model (`model`: `deputy/<agent name>`).
    The last message is the customer's new message; the history before it finds the
    conversation it continues."""
    return await _chat(body, platform, principal, conversation_id)


@router.post("/openai/chat/completions", responses=_CHAT_RESPONSES, response_class=Response)
async def openai_chat_completions(
    body: oa.ChatCompletionRequest,
    platform: PlatformDep,
    principal: PrincipalDep,
    conversation_id: ConversationHeader = None,
) -> Response:
    """The same as `POST /v1/chat/completions`, under the OpenAI base URL `/v1/openai`."""
    return await _chat(body, platform, principal, conversation_id)


@router.get("/openai/models")
def list_models(platform: PlatformDep, principal: PrincipalDep) -> dict[str, Any]:
    """The deployed agents this key can talk to here, as OpenAI models."""
    agents = svc.list_models(platform, principal)
    return {"object": "list", "data": [oa.model_object(a.name, a.created_at) for a in agents]}


@router.get("/openai/models/{model:path}")
def get_model(model: str, platform: PlatformDep, principal: PrincipalDep) -> dict[str, Any]:
    agent = svc.get_model(platform, principal, model)
    return oa.model_object(agent.name, agent.created_at)
