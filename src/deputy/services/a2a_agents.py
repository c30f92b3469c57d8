"""Each deployed agent as an A2A server (`a2a-sdk`): its agent card, and a `RequestHandler`
whose tasks are Deputy turns and whose contexts are conversations (see
`deputy.channels.a2a_protocol` for the mapping, `deputy.services.a2a_tasks` for the tables).

Supported: `SendMessage` / `message/send` (waits for the answer, or with `returnImmediately`
answers with the working task to poll), `SendStreamingMessage` / `message/stream` (the task,
the reply's pieces as artifact updates, then the final status), `GetTask` / `tasks/get`,
`ListTasks`. A turn always runs to its end (it is durable and may have called tools), so
`CancelTask` answers that the task is not cancelable; push notifications and resubscribing
are not offered (poll `tasks/get`). The caller's message id is the turn's client message id:
a message sent twice is answered once.

The route puts who is calling and which agent (`A2ACall`) into the call context's state; the
handler itself is shared by every agent and workspace."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from a2a.server.context import ServerCallContext
from a2a.server.events.event_queue import Event
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.routes.common import DefaultServerCallContextBuilder
from a2a.types.a2a_pb2 import (
    AgentCard,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskArtifactUpdateEvent,
    TaskPushNotificationConfig,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from a2a.utils.constants import DEFAULT_LIST_TASKS_PAGE_SIZE, MAX_LIST_TASKS_PAGE_SIZE
from a2a.utils.errors import (
    ExtendedAgentCardNotConfiguredError,
    InvalidParamsError,
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from starlette.requests import Request

from deputy.channels import a2a_protocol as a2a
from deputy.domain import resources as r
from deputy.domain.errors import Conflict, DeputyError, NotFound, Unavailable
from deputy.domain.tenancy import Principal
from deputy.runtime.journal import RecordedEntry
from deputy.services import conversations
from deputy.services.a2a_tasks import CHANNEL, conversation_for, list_turns, turn_view
from deputy.services.channel_agents import ReachableAgent, reachable_agent
from deputy.services.platform import Platform

log = logging.getLogger("deputy.channels.a2a")

STATE_KEY = "deputy"
MAX_CLIENT_MESSAGE_ID = 100
MAX_TEXT = 8000


@dataclass(frozen=True)
class A2ACall:
    """Who calls which agent: put in the request's state by the route."""

    platform: Platform
    principal: Principal
    agent: ReachableAgent


def find_agent(platform: Platform, principal: Principal, agent_id: str) -> ReachableAgent:
    """The agent if the key can talk to it over A2A (deployed on `a2a` or `all`)."""
    return reachable_agent(platform, principal, CHANNEL, agent_id)


def card_for(agent: ReachableAgent, url: str) -> AgentCard:
    return a2a.agent_card(agent.name, agent.spec, agent.version, url)


class DeputyCallContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's context (headers, user) plus the route's `A2ACall`."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        context.state[STATE_KEY] = request.state.deputy
        return context


def _call(context: ServerCallContext) -> A2ACall:
    call = context.state.get(STATE_KEY)
    if not isinstance(call, A2ACall):
        raise RuntimeError("an A2A call reached the handler without its route")
    return call


def _client_message_id(message_id: str) -> str | None:
    if not message_id:
        return None
    if len(message_id) <= MAX_CLIENT_MESSAGE_ID:
        return message_id
    return "a2a-" + hashlib.sha256(message_id.encode()).hexdigest()


class _TurnSink:
    """A running turn's live events: the customer's stored message (which names the turn),
    then the reply's pieces."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[RecordedEntry | str] = asyncio.Queue()

    async def entry(self, entry: RecordedEntry) -> None:
        if entry.kind == "customer_message":
            self.queue.put_nowait(entry)

    async def reply_delta(self, text: str) -> None:
        self.queue.put_nowait(text)


_running: set[asyncio.Task[str]] = set()


async def _post(call: A2ACall, params: SendMessageRequest, sink: _TurnSink) -> str:
    """Post the message as a turn of its context's conversation; the turn's id."""
    message = params.message
    if message.task_id:
        raise InvalidParamsError(
            message=f"task {message.task_id!r} ended when it was answered: send the next "
            "message in its context (contextId), without a taskId"
        )
    text = a2a.message_text(message)
    if len(text) > MAX_TEXT:
        raise InvalidParamsError(message=f"the message is longer than {MAX_TEXT} characters")
    platform, principal = call.platform, call.principal
    try:
        conversation_id = await platform.db.run(
            conversation_for, platform, principal, call.agent.id, message.context_id
        )
        body = r.MessageCreate(text=text, client_message_id=_client_message_id(message.message_id))
        result = await conversations.post_message(
            platform, principal, conversation_id, body, sink=sink
        )
    except Unavailable as exc:  # the turn failed: the task did
        turn_id = exc.details.get("turn_id")
        if isinstance(turn_id, str):
            return turn_id
        raise
    except Conflict as exc:
        raise InvalidParamsError(message=exc.message) from None
    if result.turn_id is None:
        raise InvalidParamsError(message="the message was not taken as a turn")
    return result.turn_id


@dataclass(frozen=True)
class _Ended:
    """How the turn ended: its id, or the error that kept it from being one."""

    turn_id: str | None
    error: BaseException | None


async def _events(
    call: A2ACall, params: SendMessageRequest
) -> AsyncIterator[RecordedEntry | str | _Ended]:
    """The turn's live events: its customer message, the reply's pieces, then `_Ended`. The
    turn is its own task, so a caller that goes away does not stop it."""
    sink = _TurnSink()
    task = asyncio.create_task(_post(call, params, sink))
    _running.add(task)
    task.add_done_callback(_running.discard)
    getting: asyncio.Future[RecordedEntry | str] | None = None
    try:
        while True:
            getting = asyncio.ensure_future(sink.queue.get())
            done, _ = await asyncio.wait({getting, task}, return_when=asyncio.FIRST_COMPLETED)
            if getting in done:
                yield getting.result()
                continue
            while not sink.queue.empty():
                yield sink.queue.get_nowait()
            error = task.exception()
            yield _Ended(None if error else task.result(), error)
            return
    finally:  # done, or the caller went away: stop waiting (the turn itself goes on)
        if getting is not None:
            getting.cancel()


async def _task(call: A2ACall, turn_id: str, history_length: int | None) -> Task:
    view = await call.platform.db.run(
        turn_view, call.platform, call.principal, call.agent.id, turn_id
    )
    return a2a.task_of(view, history_length)


def _history_length(params: SendMessageRequest) -> int | None:
    configuration = params.configuration
    return configuration.history_length if configuration.HasField("history_length") else None


def _ended(ended: _Ended) -> str:
    """The turn's id, or its error as the caller should see it (an unknown context is a bad
    parameter; a refused message keeps its Deputy error)."""
    if ended.error is None and ended.turn_id:
        return ended.turn_id
    if isinstance(ended.error, NotFound):
        raise InvalidParamsError(message=ended.error.message) from None
    if isinstance(ended.error, DeputyError):
        raise InvalidParamsError(message=ended.error.message) from None
    raise ended.error or RuntimeError("the turn ended without an id")


class DeputyRequestHandler(RequestHandler):
    """A2A methods on Deputy conversations, for whichever agent the call context names."""

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Task:
        call = _call(context)
        length = _history_length(params)
        async for event in _events(call, params):
            if isinstance(event, RecordedEntry) and params.configuration.return_immediately:
                return await _task(call, event.turn_id or "", length)  # the turn goes on
            if isinstance(event, _Ended):
                return await _task(call, _ended(event), length)
        raise RuntimeError("the turn's events ended without its end")  # pragma: no cover

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        call = _call(context)
        working: Task | None = None
        streamed = False
        async for event in _events(call, params):
            if isinstance(event, RecordedEntry):
                working = await _task(call, event.turn_id or "", None)
                working.status.CopyFrom(TaskStatus(state=TaskState.TASK_STATE_WORKING))
                yield working
            elif isinstance(event, str) and working is not None:
                yield TaskArtifactUpdateEvent(
                    task_id=working.id,
                    context_id=working.context_id,
                    artifact=a2a.reply_artifact(working.id, [event]),
                    append=streamed,
                    last_chunk=False,
                )
                streamed = True
            elif isinstance(event, _Ended):
                finished = await _task(call, _ended(event), None)
                if working is None:  # a repeated message: nothing ran; its task as it ended
                    yield finished
                    return
                if not streamed and finished.artifacts:
                    yield TaskArtifactUpdateEvent(
                        task_id=finished.id,
                        context_id=finished.context_id,
                        artifact=finished.artifacts[0],
                        last_chunk=True,
                    )
                yield TaskStatusUpdateEvent(
                    task_id=finished.id, context_id=finished.context_id, status=finished.status
                )
                return

    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> Task | None:
        call = _call(context)
        length = params.history_length if params.HasField("history_length") else None
        try:
            return await _task(call, params.id, length)
        except NotFound:
            raise TaskNotFoundError from None

    async def on_list_tasks(
        self, params: ListTasksRequest, context: ServerCallContext
    ) -> ListTasksResponse:
        call = _call(context)
        size = params.page_size or DEFAULT_LIST_TASKS_PAGE_SIZE
        if not 1 <= size <= MAX_LIST_TASKS_PAGE_SIZE:
            raise InvalidParamsError(message=f"pageSize must be 1 to {MAX_LIST_TASKS_PAGE_SIZE}")
        offset = int(params.page_token) if params.page_token.isdigit() else 0
        if params.page_token and not params.page_token.isdigit():
            raise InvalidParamsError(message="pageToken is not one this server gave")
        page = await call.platform.db.run(
            lambda: list_turns(
                call.platform,
                call.principal,
                call.agent.id,
                context_id=params.context_id,
                offset=offset,
                limit=size,
            )
        )
        length = params.history_length if params.HasField("history_length") else None
        tasks = [a2a.task_of(view, length) for view in page.views]
        if params.status:
            tasks = [task for task in tasks if task.status.state == params.status]
        return ListTasksResponse(
            tasks=tasks,
            next_page_token=str(page.next_offset) if page.next_offset is not None else "",
            page_size=size,
            total_size=page.total,
        )

    async def on_cancel_task(
        self, params: CancelTaskRequest, context: ServerCallContext
    ) -> Task | None:
        task = await self.on_get_task(GetTaskRequest(id=params.id), context)
        state = "ended" if task is not None and task.status.state in a2a.TERMINAL else "running"
        raise TaskNotCancelableError(
            message=f"task {params.id!r} is {state}: a turn always runs to its end (it may "
            "have called tools); send a new message to change course"
        )

    async def on_subscribe_to_task(
        self, params: SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        raise UnsupportedOperationError(message="resubscribing is not offered: poll tasks/get")
        yield  # pragma: no cover - makes this an async generator

    async def on_create_task_push_notification_config(
        self, params: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        raise PushNotificationNotSupportedError

    async def on_get_task_push_notification_config(
        self, params: GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        raise PushNotificationNotSupportedError

    async def on_list_task_push_notification_configs(
        self, params: ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> ListTaskPushNotificationConfigsResponse:
        raise PushNotificationNotSupportedError

    async def on_delete_task_push_notification_config(
        self, params: DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        raise PushNotificationNotSupportedError

    async def on_get_extended_agent_card(
        self, params: GetExtendedAgentCardRequest, context: ServerCallContext
    ) -> AgentCard:
        raise ExtendedAgentCardNotConfiguredError


__all__ = ["A2ACall", "DeputyCallContextBuilder", "DeputyRequestHandler", "card_for", "find_agent"]
