"""Agents and their immutable, validated and linted spec versions, and the diff between two."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deputy.domain import resources as r
from deputy.domain.errors import Conflict, InvalidRequest, NotFound, ValidationFailed
from deputy.domain.ids import new_id
from deputy.domain.spec import (
    AgentSpec,
    diff_specs,
    lint_errors,
    lint_spec,
    render_diff_text,
    spec_from_data,
)
from deputy.domain.tenancy import Principal
from deputy.services.access import tenant
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.store import tables as t


def validate_spec(raw: dict[str, Any]) -> AgentSpec:
    """The spec, validated (`ValidationFailed` lists each problem by field)."""
    return spec_from_data(raw)


def _version(row: t.AgentVersion) -> r.AgentVersion:
    """A stored version with the linter's warnings, computed again from its spec."""
    version = r.AgentVersion.model_validate(row)
    try:
        findings = lint_spec(spec_from_data(row.spec))
    except ValidationFailed:  # stored under an older model; it was valid then
        return version
    return version.model_copy(update={"lint": findings})


def canonical_json(spec: AgentSpec) -> tuple[dict[str, Any], str]:
    data = spec.model_dump(mode="json")
    encoded = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return data, hashlib.sha256(encoded.encode()).hexdigest()


def _agent(session: Session, agent_id: str) -> t.Agent:
    row = session.scalar(select(t.Agent).where(t.Agent.id == agent_id))
    if row is None:
        raise NotFound("agent", agent_id)
    return row


def create_agent(platform: Platform, principal: Principal, body: r.AgentCreate) -> r.Agent:
    with tenant(platform, principal, "agents:write") as session:
        if session.scalar(select(t.Agent.id).where(t.Agent.name == body.name)):
            raise Conflict(f"an agent named {body.name!r} exists", details={"name": body.name})
        row = t.Agent(
            id=new_id("agt"),
            workspace_id=principal.workspace_id,
            name=body.name,
            description=body.description,
            latest_version=0,
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError as exc:
            raise Conflict(
                f"an agent named {body.name!r} exists", details={"name": body.name}
            ) from exc
        return r.Agent.model_validate(row)


def list_agents(
    platform: Platform, principal: Principal, *, limit: int, cursor: str | None
) -> r.Page[r.Agent]:
    with tenant(platform, principal, "agents:read") as session:
        return paginate(
            session,
            select(t.Agent),
            t.Agent.id,
            limit=limit,
            cursor=cursor,
            to_resource=r.Agent.model_validate,
        )


def get_agent(platform: Platform, principal: Principal, agent_id: str) -> r.Agent:
    with tenant(platform, principal, "agents:read") as session:
        return r.Agent.model_validate(_agent(session, agent_id))


def update_agent(
    platform: Platform, principal: Principal, agent_id: str, body: r.AgentUpdate
) -> r.Agent:
    with tenant(platform, principal, "agents:write") as session:
        row = _agent(session, agent_id)
        if body.description is not None:
            row.description = body.description
        if "model" in body.model_fields_set:
            row.model = body.model
        session.flush()
        return r.Agent.model_validate(row)


def create_version(
    platform: Platform, principal: Principal, agent_id: str, body: r.VersionCreate
) -> r.AgentVersion:
    """Validate and lint the spec and store it as the agent's next immutable version.

    A spec with lint errors is refused (`validation_error`, each finding in `details.errors`
    as `loc` = its path, `type` = its code); warnings come back with the version."""
    model = validate_spec(body.spec)
    findings = lint_spec(model)
    errors = lint_errors(findings)
    if errors:
        raise ValidationFailed(
            f"the agent spec has {len(errors)} lint error{'s' if len(errors) > 1 else ''}",
            details={"errors": [finding.as_problem() for finding in errors]},
        )
    spec, digest = canonical_json(model)
    try:
        with tenant(platform, principal, "agents:write") as session:
            agent = _agent(session, agent_id)
            if agent.latest_version:
                latest = session.scalar(
                    select(t.AgentVersion).where(
                        t.AgentVersion.agent_id == agent_id,
                        t.AgentVersion.number == agent.latest_version,
                    )
                )
                if latest is not None and latest.spec_sha256 == digest:
                    raise Conflict(
                        f"the spec is identical to version {latest.number}",
                        details={"version": latest.number},
                    )
            agent.latest_version += 1
            row = t.AgentVersion(
                id=new_id("ver"),
                workspace_id=principal.workspace_id,
                agent_id=agent_id,
                number=agent.latest_version,
                spec=spec,
                spec_sha256=digest,
                note=body.note,
                created_by_key_id=principal.key_id,
            )
            session.add(row)
            session.flush()
            return r.AgentVersion.model_validate(row).model_copy(update={"lint": findings})
    except IntegrityError as exc:  # two writers raced for the same number; nothing was stored
        raise Conflict("another version was created at the same time; retry") from exc


def list_versions(
    platform: Platform, principal: Principal, agent_id: str, *, limit: int, cursor: str | None
) -> r.Page[r.AgentVersion]:
    with tenant(platform, principal, "agents:read") as session:
        _agent(session, agent_id)
        query = select(t.AgentVersion).where(t.AgentVersion.agent_id == agent_id)
        return paginate(
            session,
            query,
            t.AgentVersion.id,
            limit=limit,
            cursor=cursor,
            to_resource=_version,
        )


def _version_row(session: Session, agent_id: str, number: int) -> t.AgentVersion:
    row = session.scalar(
        select(t.AgentVersion).where(
            t.AgentVersion.agent_id == agent_id, t.AgentVersion.number == number
        )
    )
    if row is None:
        raise NotFound("agent version", f"{agent_id}@{number}")
    return row


def get_version(
    platform: Platform, principal: Principal, agent_id: str, number: int
) -> r.AgentVersion:
    with tenant(platform, principal, "agents:read") as session:
        _agent(session, agent_id)
        return _version(_version_row(session, agent_id, number))


def diff_versions(
    platform: Platform, principal: Principal, agent_id: str, number: int, against: int | None
) -> r.VersionDiff:
    """What changed from version `against` (default: the one before) to version `number`."""
    with tenant(platform, principal, "agents:read") as session:
        _agent(session, agent_id)
        base = number - 1 if against is None else against
        if base < 1:
            raise InvalidRequest(
                f"version {number} is the first; give `against` to compare it with another",
                details={"version": number},
            )
        new = _version_row(session, agent_id, number).spec
        old = _version_row(session, agent_id, base).spec
    diff = diff_specs(spec_from_data(old), spec_from_data(new))
    return r.VersionDiff(
        agent_id=agent_id,
        from_version=base,
        to_version=number,
        changes=list(diff.changes),
        widens_permissions=diff.widens_permissions,
        text=render_diff_text(diff),
    )
