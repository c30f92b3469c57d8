"""The web chat widget: its script (`/widget.js`), a demo page that embeds it
(`/chat/{agent_id}`), and its sessions (`/v1/widget/sessions`).

A business embeds one tag:
`<script src="https://deputy.example.com/widget.js" data-agent="agt_…" data-key="dpy_…"></script>`.
The key in the page is public, so it is a widget key (a channel key with only the
`widget:sessions` scope): it starts a session, a new conversation and a token that may use only
that conversation (`deputy.services.widget_sessions`)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Header, Request, Response, status
from fastapi.responses import HTMLResponse

from deputy.api.deps import PlatformDep, PrincipalDep
from deputy.api.errors import ERROR_RESPONSES
from deputy.channels.web import demo_page, widget_script
from deputy.domain.errors import NotFound
from deputy.domain.ids import is_id
from deputy.domain.resources import ErrorBody
from deputy.domain.widget import WidgetSession
from deputy.services import widget_sessions as svc

router = APIRouter(tags=["widget"])

SCRIPT_MEDIA_TYPE: Final = "text/javascript; charset=utf-8"
SCRIPT_CACHE: Final = "public, max-age=300, stale-while-revalidate=86400"
"""Five minutes fresh (a changed widget reaches pages soon), then revalidated by ETag."""
NO_STORE: Final = {"Cache-Control": "no-store"}


def _script_headers(etag: str) -> dict[str, str]:
    return {
        "ETag": etag,
        "Cache-Control": SCRIPT_CACHE,
        "X-Content-Type-Options": "nosniff",
        # any site may load it (also pages that require CORP or CORS for their scripts)
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Access-Control-Allow-Origin": "*",
    }


@router.get(
    "/widget.js",
    response_class=Response,
    responses={200: {"content": {"text/javascript": {}}, "description": "The widget script"}},
)
def widget_js(
    if_none_match: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """The embeddable chat widget (plain JavaScript). Attributes of its script tag:
    `data-agent` (the agent id), `data-key` (a widget key), optionally `data-title`,
    `data-open="true"` (start open) and `data-key-from="fragment"` (read the key from the page's
    `#key=`)."""
    script = widget_script()
    headers = _script_headers(script.etag)
    if if_none_match is not None and script.etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=script.body, media_type=SCRIPT_MEDIA_TYPE, headers=headers)


@router.get(
    "/chat/{agent_id}",
    response_class=Response,
    responses={
        200: {"content": {"text/html": {}}, "description": "The page"},
        404: {"model": ErrorBody, "description": "Not an agent id"},
    },
)
def chat_page(agent_id: str, request: Request) -> HTMLResponse:
    """A page with the agent's chat widget, open (the widget key goes in the address's
    fragment: `/chat/{agent_id}#key=dpy_…`)."""
    if not is_id(agent_id, "agt"):
        raise NotFound("agent", agent_id)
    host = request.url.netloc
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"connect-src 'self' ws://{host} wss://{host}; img-src 'self' data: blob:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return HTMLResponse(
        demo_page(agent_id),
        headers={
            "Content-Security-Policy": policy,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


@router.post(
    "/v1/widget/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=WidgetSession,
    responses=ERROR_RESPONSES,
)
def start_session(
    platform: PlatformDep,
    principal: PrincipalDep,
    response: Response,
    origin: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> WidgetSession:
    """Start a web chat session with the widget key's agent: a new conversation on channel
    `chat` (opened by the spec's greeting) and a token for that conversation only. Only a
    widget key (a channel key with only the `widget:sessions` scope) starts one."""
    response.headers.update(NO_STORE)
    return svc.start_session(platform, principal, origin=origin)


@router.post("/v1/widget/sessions/refresh", response_model=WidgetSession, responses=ERROR_RESPONSES)
def refresh_session(
    platform: PlatformDep, principal: PrincipalDep, response: Response
) -> WidgetSession:
    """A new token (and the chat's current settings) for the session of the calling token."""
    response.headers.update(NO_STORE)
    return svc.refresh_session(platform, principal)
