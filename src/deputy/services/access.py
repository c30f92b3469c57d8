"""The one place that checks what a principal may do and opens its tenant-scoped session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from deputy.domain.errors import PermissionDenied
from deputy.domain.tenancy import Principal, Scope
from deputy.services.platform import Platform


def require(principal: Principal, scope: Scope) -> None:
    if not principal.allows(scope):
        raise PermissionDenied(
            f"this key lacks the {scope!r} scope", details={"required_scope": scope}
        )


@contextmanager
def tenant(platform: Platform, principal: Principal, scope: Scope) -> Iterator[Session]:
    """Check `scope`, then yield a session that only sees the principal's workspace."""
    require(principal, scope)
    with platform.db.tenant_session(principal.workspace_id) as session:
        yield session


def system_principal(workspace_id: str, actor: str, scopes: frozenset[Scope]) -> Principal:
    """The platform acting by itself in a workspace (`actor` is `system:<component>`, e.g.
    the improvement loop): a non-human principal, so whatever needs a human stays out of its
    reach."""
    if not actor.startswith("system:"):
        raise ValueError(f"a system actor is named system:<component>, not {actor!r}")
    return Principal(workspace_id=workspace_id, key_id=actor, key_kind="service", scopes=scopes)
