"""Web chat sessions: what makes the key in a web page safe to publish.

The script tag of a page carries a **widget key**: a channel key whose only scope is
`widget:sessions`. Anyone can read it, so all it can do is start a session: a new conversation
with its agent on channel `chat`, and a **session token** for that conversation alone. The
token reads and writes its conversation (REST, SSE, WebSocket, uploads) and nothing else: the
principal it authenticates carries `conversation_id`, and every conversation lookup
(`deputy.services.conversation_store.visible`) refuses the others as not found.

A token is `dpw_<payload>.<signature>`: the payload (workspace, agent, conversation, widget key,
expiry) as base64url JSON, signed with HMAC-SHA256 under a key derived (HKDF) from the platform's
secret key, so it needs no table and survives restarts. Revoking the widget key ends its
sessions: every use of a token checks that its key still stands.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from deputy.config import Settings
from deputy.domain import resources as r
from deputy.domain.errors import PermissionDenied, Unauthenticated
from deputy.domain.spec import AgentSpec
from deputy.domain.tenancy import WIDGET_SCOPE, Principal, Scope
from deputy.domain.widget import WidgetSession
from deputy.services.access import require, tenant
from deputy.services.conversation_attachments import UPLOAD_TYPES, max_attachment_bytes
from deputy.services.conversation_store import agent_spec
from deputy.services.conversations import create_conversation, get_conversation
from deputy.services.deployment_routing import live_version
from deputy.services.platform import Platform
from deputy.store import tables as t

SESSION_TOKEN_PREFIX: Final = "dpw_"  # noqa: S105 - a public prefix, not a secret
SESSION_TTL = timedelta(hours=12)
"""How long a token works; the widget refreshes it (`refresh_session`) while it is used."""
SESSION_SCOPES: frozenset[Scope] = frozenset({"conversations:read", "conversations:write"})
"""What a token may do, within its one conversation."""
TOKEN_VERSION = 1
WIDGET_CHANNEL = "chat"
_SIGNING_INFO = b"deputy-widget-session-token-v1"


@dataclass(frozen=True, slots=True)
class SessionClaims:
    """What a session token vouches for."""

    workspace_id: str
    agent_id: str
    conversation_id: str
    key_id: str
    expires_at: datetime


def _signing_key(settings: Settings) -> bytes:
    """A key for session tokens only, derived from the platform's secret key (a leaked token
    key would not decrypt stored secrets, nor the other way round)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"deputy-widget-sessions", info=_SIGNING_INFO
    ).derive(settings.secret_key_value().encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(settings: Settings, body: str) -> str:
    message = (SESSION_TOKEN_PREFIX + body).encode("ascii")
    return _b64(hmac.new(_signing_key(settings), message, hashlib.sha256).digest())


def issue_token(settings: Settings, claims: SessionClaims) -> str:
    payload = {
        "v": TOKEN_VERSION,
        "ws": claims.workspace_id,
        "agt": claims.agent_id,
        "cnv": claims.conversation_id,
        "key": claims.key_id,
        "exp": int(claims.expires_at.timestamp()),
    }
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{SESSION_TOKEN_PREFIX}{body}.{_signature(settings, body)}"


def read_token(settings: Settings, token: str, *, now: datetime | None = None) -> SessionClaims:
    """The claims of a genuine, unexpired token; `Unauthenticated` otherwise."""
    body, dot, signature = token.removeprefix(SESSION_TOKEN_PREFIX).partition(".")
    if not token.startswith(SESSION_TOKEN_PREFIX) or not dot or not body or not signature:
        raise Unauthenticated("malformed widget session token")
    try:
        expected = _signature(settings, body)
    except UnicodeEncodeError as exc:
        raise Unauthenticated("malformed widget session token") from exc
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise Unauthenticated("invalid widget session token")
    try:
        payload = json.loads(_unb64(body))
        claims = SessionClaims(
            workspace_id=str(payload["ws"]),
            agent_id=str(payload["agt"]),
            conversation_id=str(payload["cnv"]),
            key_id=str(payload["key"]),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise Unauthenticated("malformed widget session token") from exc
    if payload.get("v") != TOKEN_VERSION:
        raise Unauthenticated("unsupported widget session token version")
    if claims.expires_at <= (now or datetime.now(UTC)):
        raise Unauthenticated("this widget session has expired: start a new one")
    return claims


def session_principal(platform: Platform, token: str) -> Principal:
    """Who a session token speaks for: its widget key, limited to its one conversation. The key
    must still stand (not revoked or expired, still a widget key of the same agent)."""
    claims = read_token(platform.settings, token)
    now = datetime.now(UTC)
    with platform.db.session() as session:
        key = session.get(t.ApiKey, claims.key_id)
        if (
            key is None
            or key.workspace_id != claims.workspace_id
            or key.kind != "channel"
            or key.agent_id != claims.agent_id
            or WIDGET_SCOPE not in key.scopes
        ):
            raise Unauthenticated("the widget key of this session no longer exists")
        if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
            raise Unauthenticated("the widget key of this session was revoked or has expired")
    return Principal(
        workspace_id=claims.workspace_id,
        key_id=claims.key_id,
        key_kind="channel",
        scopes=SESSION_SCOPES,
        agent_id=claims.agent_id,
        conversation_id=claims.conversation_id,
    )


def _widget_key(principal: Principal) -> str:
    """The agent of a widget key; anything else is refused."""
    require(principal, WIDGET_SCOPE)
    if principal.key_kind != "channel" or principal.agent_id is None:
        raise PermissionDenied(
            f"widget sessions are started with a widget key: a channel key with only the "
            f"{WIDGET_SCOPE!r} scope"
        )
    return principal.agent_id


def _serving_spec(platform: Platform, principal: Principal, agent_id: str) -> AgentSpec:
    """The spec that answers the agent's web chat (its live version, else its latest)."""
    with tenant(platform, principal, "conversations:read") as session:
        agent = session.scalar(select(t.Agent).where(t.Agent.id == agent_id))
        if agent is None or agent.latest_version < 1:
            raise PermissionDenied("the agent of this widget key has no version to chat with")
        version = (
            live_version(session, agent_id, WIDGET_CHANNEL)
            or live_version(session, agent_id)
            or agent.latest_version
        )
        return agent_spec(session, agent_id, version)


def _described(
    platform: Platform, conversation: r.Conversation, spec: AgentSpec, key_id: str
) -> WidgetSession:
    settings = platform.settings
    claims = SessionClaims(
        workspace_id=conversation.workspace_id,
        agent_id=conversation.agent_id,
        conversation_id=conversation.id,
        key_id=key_id,
        expires_at=(datetime.now(UTC) + SESSION_TTL).replace(microsecond=0),
    )
    return WidgetSession(
        conversation_id=conversation.id,
        agent_id=conversation.agent_id,
        status=conversation.status,
        token=issue_token(settings, claims),
        expires_at=claims.expires_at,
        title=spec.persona.name,
        allow_uploads=spec.channels.chat.allow_uploads,
        max_upload_bytes=max_attachment_bytes(settings),
        upload_types=sorted(UPLOAD_TYPES),
    )


def start_session(
    platform: Platform, principal: Principal, *, origin: str | None = None
) -> WidgetSession:
    """A new conversation on channel `chat` (opened by the spec's greeting) and its token.
    `origin`: the page that asked (the browser's `Origin`), kept in the conversation's
    metadata for the workspace's information only."""
    agent_id = _widget_key(principal)
    acting = replace(principal, scopes=SESSION_SCOPES)
    spec = _serving_spec(platform, acting, agent_id)
    if not spec.channels.chat.enabled:
        raise PermissionDenied("the agent's web chat is off (its spec's channels.chat.enabled)")
    metadata = {"widget_key_id": principal.key_id}
    if origin:
        metadata["widget_origin"] = origin[: r.MAX_METADATA_VALUE]
    conversation = create_conversation(
        platform,
        acting,
        r.ConversationCreate(agent_id=agent_id, channel=WIDGET_CHANNEL, metadata=metadata),
    )
    with tenant(platform, acting, "conversations:read") as session:
        spec = agent_spec(session, conversation.agent_id, conversation.agent_version)
    return _described(platform, conversation, spec, principal.key_id)


def refresh_session(platform: Platform, principal: Principal) -> WidgetSession:
    """A fresh token (and the chat's current settings) for the session a token belongs to."""
    if principal.conversation_id is None:
        raise PermissionDenied("only a widget session's token can be refreshed")
    conversation = get_conversation(platform, principal, principal.conversation_id)
    with tenant(platform, principal, "conversations:read") as session:
        spec = agent_spec(
            session, conversation.current_agent_id, conversation.current_agent_version
        )
    return _described(platform, conversation, spec, principal.key_id)
