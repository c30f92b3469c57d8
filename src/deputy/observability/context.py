"""Per-request context carried into every log line: request id and workspace."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("deputy_request_id", default=None)
workspace_id_var: ContextVar[str | None] = ContextVar("deputy_workspace_id", default=None)
