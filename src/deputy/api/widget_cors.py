"""Cross-origin access for the web chat widget, on the few paths it calls and nowhere else.

The widget runs in the pages of the business's site and calls Deputy from there: it starts and
refreshes its session, reads its conversation, posts messages and uploads files. Deputy
authenticates with bearer tokens only (never cookies), so any origin may call these paths
without credentials: a page gains nothing it could not do with the token it already holds. The
rest of the API (keys, agents, deployments...) answers no cross-origin browser request. The
WebSocket needs no CORS (browsers send its `Origin` but do not enforce CORS on it)."""

from __future__ import annotations

import re
from typing import Final

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

WIDGET_PATHS: Final = re.compile(
    r"^/v1/(widget/sessions(/refresh)?"
    r"|conversations/[^/]+(/(transcript|messages|events|attachments|feedback))?)$"
)
ALLOWED_HEADERS: Final = ("Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID")
EXPOSED_HEADERS: Final = ("X-Request-ID", "X-Error-Code")
PREFLIGHT_MAX_AGE = 600


class WidgetCorsMiddleware:
    """CORS (any origin, no credentials) for `WIDGET_PATHS`; other paths pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=("*",),
            allow_methods=("GET", "POST"),
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            allow_credentials=False,
            max_age=PREFLIGHT_MAX_AGE,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and WIDGET_PATHS.match(scope.get("path", "")):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
