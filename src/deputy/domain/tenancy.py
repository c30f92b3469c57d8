"""Workspaces, roles, scopes and the acting principal every service call receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal["owner", "builder", "reviewer", "viewer"]
KeyKind = Literal["member", "service", "channel"]
Scope = Literal[
    "workspace:read",
    "workspace:admin",
    "workspaces:create",
    "members:read",
    "members:write",
    "keys:read",
    "keys:write",
    "materials:read",
    "materials:write",
    "agents:read",
    "agents:write",
    "reviews:write",
    "deployments:write",
    "audit:read",
    "conversations:read",
    "conversations:write",
    "metrics:read",
    "billing:read",
    "billing:write",
    "alerts:write",
    "widget:sessions",
]

ALL_SCOPES: frozenset[Scope] = frozenset(get_args(Scope))
ROLES: tuple[Role, ...] = get_args(Role)

_READ: frozenset[Scope] = frozenset(s for s in ALL_SCOPES if s.endswith(":read"))

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    "viewer": _READ,
    "reviewer": _READ | {"reviews:write", "deployments:write", "alerts:write"},
    "builder": _READ | {"materials:write", "agents:write", "conversations:write"},
    # `workspaces:create` is the platform operator's: only the bootstrap owner key carries it.
    "owner": ALL_SCOPES - {"workspaces:create"},
}

# A channel key is what a server-side integration or a messaging webhook holds: it may only talk.
CHANNEL_KEY_SCOPES: frozenset[Scope] = frozenset({"conversations:write", "conversations:read"})
# A widget key is the channel key published in a web page's script tag: it may only start widget
# sessions (each a new conversation and a token for that conversation alone), so it holds no
# other scope (`deputy.services.widget_sessions`).
WIDGET_SCOPE: Scope = "widget:sessions"
WIDGET_KEY_SCOPES: frozenset[Scope] = frozenset({WIDGET_SCOPE})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, its workspace, and what it may do (role ∩ key scopes)."""

    workspace_id: str
    key_id: str
    key_kind: KeyKind
    scopes: frozenset[Scope]
    member_id: str | None = None
    role: Role | None = None
    agent_id: str | None = None  # channel keys are bound to one agent
    # A widget session's token is bound to one conversation: it sees no other.
    conversation_id: str | None = None

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes
