"""A workspace's tool sources (OpenAPI documents, MCP servers, webhook credentials), the tools
they offer, spec entries generated from them, and the executor that calls them for an agent.

Credentials are encrypted at rest and never returned: a source shows its auth only as
`{type, configured}`."""

from __future__ import annotations

import re
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deputy.domain import resources as r
from deputy.domain.errors import Conflict, NotFound, Unavailable, ValidationFailed
from deputy.domain.ids import new_id
from deputy.domain.spec import MCPBinding, OpenAPIBinding, Tool
from deputy.domain.tenancy import Principal
from deputy.services import materials
from deputy.services.access import require, tenant
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.services.tool_clients import build_executor, source_client
from deputy.services.tool_source_config import (
    SourceSecrets,
    auth_payload,
    auth_type,
    openapi_document,
    openapi_view,
    parse_auth,
    parse_mcp,
)
from deputy.store import tables as t
from deputy.store.tables import utcnow
from deputy.tools.base import ToolDefinition, ToolTransportError

__all__ = [
    "build_executor",
    "create_source",
    "delete_source",
    "get_source",
    "list_sources",
    "operation_definitions",
    "source_operations",
    "spec_tools",
    "update_source",
]


def _resource(row: t.ToolSource) -> r.ToolSource:
    config = dict(row.config)
    hidden = ("document", "base_url", "honours", "document_honours")
    public = {k: v for k, v in config.items() if k not in hidden}
    honours = config.get("honours")
    if honours is None:
        honours = bool(config.get("document_honours", False))
    return r.ToolSource(
        id=row.id,
        name=row.name,
        kind=row.kind,
        description=row.description,
        base_url=config.get("base_url"),
        config=public,
        auth=r.ToolSourceAuth(type=row.auth_type, configured=row.credentials_encrypted is not None),
        honours_idempotency_keys=bool(honours),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _row(session: Session, source_id: str) -> t.ToolSource:
    row = session.scalar(select(t.ToolSource).where(t.ToolSource.id == source_id))
    if row is None:
        raise NotFound("tool source", source_id)
    return row


def _document(
    platform: Platform, principal: Principal, inline: dict[str, Any] | None, material_id: str | None
) -> dict[str, Any]:
    if (inline is None) == (material_id is None):
        raise ValidationFailed("an OpenAPI source needs `document` or `material_id` (one of them)")
    if inline is not None:
        return inline
    assert material_id is not None
    material, chunks = materials.material_content(platform, principal, material_id)
    data = b"".join(chunks)
    try:
        parsed = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValidationFailed(
            f"material {material.id} ({material.filename}) is not a JSON or YAML document",
            details={"material_id": material.id},
        ) from exc
    if not isinstance(parsed, dict):
        raise ValidationFailed(f"material {material.id} does not hold an OpenAPI document")
    return parsed


def _configure(
    platform: Platform,
    principal: Principal,
    kind: str,
    body: r.ToolSourceCreate | r.ToolSourceUpdate,
    current: dict[str, Any],
    secrets: SourceSecrets,
) -> tuple[dict[str, Any], SourceSecrets]:
    """The new (config, secrets) of a source of `kind` after applying `body` to `current`."""
    fields = body.model_fields_set
    auth = parse_auth(body.auth) if "auth" in fields else secrets.auth_config()
    config = dict(current)
    if "base_url" in fields:
        config["base_url"] = body.base_url.rstrip("/") if body.base_url else None
    if "honours_idempotency_keys" in fields:
        config["honours"] = body.honours_idempotency_keys
    if kind == "openapi":
        if fields & {"document", "material_id"} or "document" not in config:
            raw = _document(platform, principal, body.document, body.material_id)
            document = openapi_document(raw)
            config.update(
                openapi_view(document),
                document=raw,
                document_honours=document.honours_idempotency_keys,
            )
        if not config.get("base_url"):
            raise ValidationFailed("an OpenAPI source needs `base_url`: where to call it")
        return config, SourceSecrets(auth=auth_payload(auth))
    if body.document is not None or body.material_id is not None:
        raise ValidationFailed(f"a {kind} source takes no OpenAPI document")
    if kind == "mcp":
        if body.base_url is not None:
            raise ValidationFailed("an MCP source takes its URL in `mcp`")
        if body.mcp is not None:
            transport, secrets = parse_mcp(body.mcp, auth, platform.settings)
            config["transport"] = transport
        elif "transport" not in config:
            raise ValidationFailed("an MCP source needs `mcp`: the server to connect to")
        else:
            secrets = SourceSecrets(
                auth=auth_payload(auth), secret_env=secrets.secret_env, headers=secrets.headers
            )
        if config["transport"]["type"] == "stdio" and secrets.auth is not None:
            raise ValidationFailed("a stdio MCP server takes secrets as `secret_env`, not `auth`")
        return config, secrets
    if body.mcp is not None:
        raise ValidationFailed("an http source takes no `mcp` configuration")
    return config, SourceSecrets(auth=auth_payload(auth))


def create_source(
    platform: Platform, principal: Principal, body: r.ToolSourceCreate
) -> r.ToolSource:
    """Register a source. Its credentials are encrypted before they reach the database."""
    require(principal, "agents:write")
    config, secrets = _configure(platform, principal, body.kind, body, {}, SourceSecrets())
    conflict = Conflict(f"a tool source named {body.name!r} exists", details={"name": body.name})
    try:
        with tenant(platform, principal, "agents:write") as session:
            if session.scalar(select(t.ToolSource.id).where(t.ToolSource.name == body.name)):
                raise conflict
            row = t.ToolSource(
                id=new_id("tsrc"),
                workspace_id=principal.workspace_id,
                name=body.name,
                kind=body.kind,
                description=body.description,
                config=config,
                auth_type=auth_type(secrets),
                credentials_encrypted=secrets.encrypt(platform.secrets),
            )
            session.add(row)
            session.flush()
            return _resource(row)
    except IntegrityError as exc:
        raise conflict from exc


def list_sources(
    platform: Platform, principal: Principal, *, limit: int, cursor: str | None
) -> r.Page[r.ToolSource]:
    with tenant(platform, principal, "agents:read") as session:
        return paginate(
            session,
            select(t.ToolSource),
            t.ToolSource.id,
            limit=limit,
            cursor=cursor,
            to_resource=_resource,
        )


def get_source(platform: Platform, principal: Principal, source_id: str) -> r.ToolSource:
    with tenant(platform, principal, "agents:read") as session:
        return _resource(_row(session, source_id))


def update_source(
    platform: Platform, principal: Principal, source_id: str, body: r.ToolSourceUpdate
) -> r.ToolSource:
    """Change a source; `auth` rotates its credentials (the old ones are overwritten)."""
    with tenant(platform, principal, "agents:write") as session:
        row = _row(session, source_id)
        current = SourceSecrets.decrypt(platform.secrets, row.credentials_encrypted, row.name)
        config, secrets = _configure(platform, principal, row.kind, body, row.config, current)
        if body.description is not None:
            row.description = body.description
        row.config = config
        row.auth_type = auth_type(secrets)
        row.credentials_encrypted = secrets.encrypt(platform.secrets)
        row.updated_at = utcnow()
        session.flush()
        return _resource(row)


def delete_source(platform: Platform, principal: Principal, source_id: str) -> None:
    with tenant(platform, principal, "agents:write") as session:
        session.delete(_row(session, source_id))


async def operation_definitions(
    platform: Platform, row: t.ToolSource
) -> tuple[list[ToolDefinition], list[r.SkippedToolOperation]]:
    """The operations a source (a row the caller has read) offers as tool definitions, and
    the OpenAPI operations that cannot be tools; an MCP server is asked."""
    if row.kind == "http":
        return [], []  # webhooks are declared in the spec, one binding each
    if row.kind == "openapi":
        document = openapi_document(row.config["document"])
        skipped = [
            r.SkippedToolOperation(method=s.method, path=s.path, reason=s.reason)
            for s in document.skipped
        ]
        return document.tools(), skipped
    client = source_client(platform, row)
    try:
        return await client.list_tools(), []
    except ToolTransportError as exc:
        raise Unavailable(f"the MCP server of {row.name!r} cannot list its tools: {exc}") from None
    finally:
        await client.aclose()


async def _definitions(
    platform: Platform, principal: Principal, source_id: str
) -> tuple[t.ToolSource, list[ToolDefinition], list[r.SkippedToolOperation]]:
    with tenant(platform, principal, "agents:read") as session:
        row = _row(session, source_id)
    definitions, skipped = await operation_definitions(platform, row)
    return row, definitions, skipped


async def source_operations(
    platform: Platform, principal: Principal, source_id: str
) -> r.ToolSourceOperations:
    """The operations a source offers (an MCP server is asked; an OpenAPI document is read)."""
    row, definitions, skipped = await _definitions(platform, principal, source_id)
    return r.ToolSourceOperations(
        source_id=row.id,
        operations=[
            r.ToolOperation(
                operation=d.operation,
                description=d.description,
                effect=d.effect,
                input_schema=d.input_schema,
            )
            for d in definitions
        ],
        skipped=skipped,
    )


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_SNAKE = re.compile(r"[^a-z0-9]+")


def tool_name(operation: str) -> str:
    """A spec tool name (snake_case, <= 64 chars) for an operation: `getOrder` → `get_order`."""
    name = _NOT_SNAKE.sub("_", _CAMEL.sub("_", operation).lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"op_{name}".rstrip("_")
    return name[:64].rstrip("_")


async def spec_tools(
    platform: Platform, principal: Principal, source_id: str, body: r.SpecToolsRequest
) -> r.SpecTools:
    """AgentSpec `tools` entries for the chosen operations (all by default): binding, the
    inferred effect tier (for a reviewer to confirm) and the description."""
    row, definitions, _ = await _definitions(platform, principal, source_id)
    if row.kind == "http":
        raise ValidationFailed("an http source has no operations: bind webhooks in the spec")
    by_name = {d.operation: d for d in definitions}
    chosen = list(body.operations) if body.operations is not None else list(by_name)
    unknown = [name for name in chosen if name not in by_name]
    if unknown:
        raise ValidationFailed(
            f"{row.name!r} has no operation(s) {unknown}",
            details={"unknown": unknown, "available": sorted(by_name)},
        )
    tools: list[Tool] = []
    used: set[str] = set()
    for operation in dict.fromkeys(chosen):
        definition = by_name[operation]
        name = base = tool_name(operation)
        counter = 2
        while name in used:
            name = f"{base[:60]}_{counter}"
            counter += 1
        used.add(name)
        binding: OpenAPIBinding | MCPBinding = (
            OpenAPIBinding(source=row.name, operation=operation)
            if row.kind == "openapi"
            else MCPBinding(source=row.name, tool=operation)
        )
        tools.append(
            Tool(
                name=name,
                description=definition.description[:2000],
                effect=definition.effect,
                binding=binding,
            )
        )
    return r.SpecTools(source_id=row.id, tools=tools)
