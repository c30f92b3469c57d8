"""Per-request context carried into every log line: request id and workspace.

A mutable holder, because the workspace becomes known inside a sync dependency that runs in a
worker thread with a copy of the context: mutating the shared object reaches the access log.
Work outside a request (a turn resumed in the background) names its workspace with
`working_for`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class RequestInfo:
    request_id: str
    workspace_id: str | None = None


current_request: ContextVar[RequestInfo | None] = ContextVar("deputy_request", default=None)


def current_request_id() -> str | None:
    info = current_request.get()
    return info.request_id if info else None


def note_workspace(workspace_id: str) -> None:
    info = current_request.get()
    if info is not None:
        info.workspace_id = workspace_id


current_workspace: ContextVar[str | None] = ContextVar("deputy_workspace", default=None)


@contextmanager
def working_for(workspace_id: str) -> Iterator[None]:
    """Log lines written inside carry `workspace_id`, in a request or not."""
    token = current_workspace.set(workspace_id)
    try:
        yield
    finally:
        current_workspace.reset(token)
