"""The conversation and human-queue operations of the API, as `Call`s (see `deputy.sdk._calls`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel

from deputy.domain import resources as r
from deputy.sdk._calls import (
    MODEL_FAILURE_CODES,
    Call,
    _key,
    _list_params,
    _model,
    _nothing,
    _page,
    _post,
    _seg,
)

EVENT_STREAM: Final = "text/event-stream"


def _conversation(conversation_id: str) -> str:
    return f"/v1/conversations/{_seg(conversation_id)}"


def create_conversation(
    agent_id: str,
    customer: r.CustomerRef | Mapping[str, Any] | None,
    channel: str | None,
    context: Mapping[str, Any] | None,
    metadata: Mapping[str, str] | None,
    idempotency_key: str | None,
) -> Call[r.Conversation]:
    body: dict[str, Any] = {"agent_id": agent_id}
    if customer is not None:
        body["customer"] = (
            customer.model_dump(mode="json") if isinstance(customer, BaseModel) else dict(customer)
        )
    if channel is not None:
        body["channel"] = channel
    if context:
        body["context"] = dict(context)
    if metadata:
        body["metadata"] = dict(metadata)
    return _post("/v1/conversations", _model(r.Conversation), body, idempotency_key)


def get_conversation(conversation_id: str) -> Call[r.Conversation]:
    return Call("GET", _conversation(conversation_id), _model(r.Conversation))


def list_conversations(
    agent_id: str | None,
    status: r.ConversationStatus | None,
    customer_id: str | None,
    limit: int | None,
    cursor: str | None,
) -> Call[r.Page[r.Conversation]]:
    params = _list_params(limit, cursor)
    for name, value in (("agent_id", agent_id), ("status", status), ("customer_id", customer_id)):
        if value is not None:
            params[name] = value
    return Call("GET", "/v1/conversations", _page(r.Conversation), params=params)


def _message(text: str, client_message_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text}
    if client_message_id is not None:
        body["client_message_id"] = client_message_id
    return body


def post_message(
    conversation_id: str,
    text: str,
    client_message_id: str | None,
    timeout: float | None,
    idempotency_key: str | None,
) -> Call[r.TurnResult]:
    """A customer message and the agent's turn. The turn spends model tokens: a model's
    failure is final, and a resend after a lost answer replays the stored one."""
    return Call(
        "POST",
        f"{_conversation(conversation_id)}/messages",
        _model(r.TurnResult),
        json=_message(text, client_message_id),
        idempotency_key=_key(idempotency_key),
        final_codes=MODEL_FAILURE_CODES,
        timeout=timeout,
    )


def stream_message(
    conversation_id: str, text: str, client_message_id: str | None, timeout: float | None
) -> Call[None]:
    """The same, answered as Server-Sent Events. It carries no Idempotency-Key (a stored answer
    would be replayed whole, not streamed), so it is resent only when it never reached the
    server; `client_message_id` makes a deliberate resend return the first turn instead."""
    return Call(
        "POST",
        f"{_conversation(conversation_id)}/messages",
        _nothing,
        json=_message(text, client_message_id),
        final_codes=MODEL_FAILURE_CODES,
        timeout=timeout,
        accept=EVENT_STREAM,
    )


def transcript(conversation_id: str, after: int, limit: int | None) -> Call[r.TranscriptPage]:
    params: dict[str, str | int] = {"after": after}
    if limit is not None:
        params["limit"] = limit
    return Call(
        "GET",
        f"{_conversation(conversation_id)}/transcript",
        _model(r.TranscriptPage),
        params=params,
    )


def give_feedback(
    conversation_id: str, rating: int | None, comment: str, idempotency_key: str | None
) -> Call[r.TranscriptEntry]:
    body: dict[str, Any] = {"comment": comment}
    if rating is not None:
        body["rating"] = rating
    path = f"{_conversation(conversation_id)}/feedback"
    return _post(path, _model(r.TranscriptEntry), body, idempotency_key)


def close_conversation(
    conversation_id: str,
    outcome: r.ConversationOutcome | None,
    reason: str,
    idempotency_key: str | None,
) -> Call[r.Conversation]:
    body: dict[str, Any] = {"reason": reason}
    if outcome is not None:
        body["outcome"] = outcome
    path = f"{_conversation(conversation_id)}/close"
    return _post(path, _model(r.Conversation), body, idempotency_key)


def list_queue(
    queue: str | None, limit: int | None, cursor: str | None
) -> Call[r.Page[r.Conversation]]:
    params = _list_params(limit, cursor)
    if queue is not None:
        params["queue"] = queue
    return Call("GET", "/v1/queue", _page(r.Conversation), params=params)


def claim(conversation_id: str, idempotency_key: str | None) -> Call[r.Conversation]:
    path = f"{_conversation(conversation_id)}/claim"
    return _post(path, _model(r.Conversation), None, idempotency_key)


def human_reply(
    conversation_id: str, text: str, idempotency_key: str | None
) -> Call[r.TranscriptEntry]:
    path = f"{_conversation(conversation_id)}/human-replies"
    return _post(path, _model(r.TranscriptEntry), {"text": text}, idempotency_key)


def hand_back(conversation_id: str, idempotency_key: str | None) -> Call[r.Conversation]:
    path = f"{_conversation(conversation_id)}/hand-back"
    return _post(path, _model(r.Conversation), None, idempotency_key)
