"""The tool world of a sandbox run, made only of sandbox targets.

Each tool source of the agent's spec goes to the target the run's `world` maps it to:
`simulation` (an in-process simulation the operator registered in `DEPUTY_SANDBOX_BACKENDS`;
callers can only name its key), `staging` (another registered tool source, with its own URL
and credentials; never a source the spec binds, which are production), or `recorded` (the
default: the answers the source gave in production, replayed from the workspace's tool-call
ledger; a call nobody recorded fails without going anywhere). Production sources are never
turned into clients here, and nothing is written: the world is read once when a run starts.

`check_world` validates a mapping when a run is created (and says where each source goes);
`open_world` builds the run's `WorldFactory` when it starts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.config import Settings
from deputy.domain.errors import NotFound, ValidationFailed
from deputy.domain.sandbox import (
    RecordedTarget,
    SimulationTarget,
    StagingTarget,
    WorldConfig,
    WorldTarget,
)
from deputy.domain.spec import AgentSpec, HTTPBinding, MCPBinding, OpenAPIBinding, Tool
from deputy.sandbox.ports import WorldFactory
from deputy.sandbox.worlds import (
    CompositeWorldFactory,
    RecordedWorldFactory,
    Recording,
    StagingWorldFactory,
    load_backend,
    recordings_from_calls,
)
from deputy.services.platform import Platform
from deputy.services.tool_clients import source_client
from deputy.services.tool_ledger import call_record
from deputy.services.tool_source_config import SourceSecrets
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.tools.base import ToolSourceClient
from deputy.tools.checks import source_key

MAX_RECORDINGS = 500
"""Recorded calls loaded per source (the newest): enough to answer a suite's lookups, bounded
so a busy workspace's ledger is never read whole."""
STAGING_KINDS = frozenset({"openapi", "mcp"})
_NOWHERE = RecordedWorldFactory((), description="nothing (no recordings)")
"""What serves a source the spec does not bind: every call fails without going anywhere."""


def spec_sources(spec: AgentSpec) -> dict[str, list[Tool]]:
    """The spec's tool sources (`deputy.tools.checks.source_key`) and the tools each serves;
    built-ins have none."""
    sources: dict[str, list[Tool]] = {}
    for tool in spec.tools:
        key = source_key(tool)
        if key is not None:
            sources.setdefault(key, []).append(tool)
    return sources


def targets(spec: AgentSpec, config: WorldConfig) -> dict[str, WorldTarget]:
    """Every spec source with its target: the mapped one, else `recorded`."""
    return {
        source: config.sources.get(source, RecordedTarget(target="recorded"))
        for source in spec_sources(spec)
    }


def describe(target: WorldTarget) -> str:
    if isinstance(target, SimulationTarget):
        seed = f", seed {target.seed}" if target.seed else ""
        return f"simulation: {target.backend}{seed}"
    if isinstance(target, StagingTarget):
        return f"staging: tool source {target.source}"
    return "recorded: answers from the tool-call ledger, replayed"


def _production_names(spec: AgentSpec) -> set[str]:
    """Names of the registered sources the spec binds: its production systems."""
    names: set[str] = set()
    for tool in spec.tools:
        binding = tool.binding
        if isinstance(binding, OpenAPIBinding | MCPBinding | HTTPBinding) and binding.source:
            names.add(binding.source)
    return names


def check_world(
    session: Session, settings: Settings, spec: AgentSpec, config: WorldConfig
) -> dict[str, str]:
    """Check `config` against the spec and the workspace (in the caller's tenant session) and
    say where each spec source goes. `ValidationFailed` for a source the spec does not have, a
    backend the operator did not register, or a staging target that is a production source (or
    cannot be a client); `NotFound` for a staging source the workspace does not have."""
    sources = spec_sources(spec)
    unknown = sorted(set(config.sources) - set(sources))
    if unknown:
        raise ValidationFailed(
            f"the agent's spec has no tool source {', '.join(unknown)}",
            details={"sources": unknown, "spec_sources": sorted(sources)},
        )
    production = _production_names(spec)
    for source, target in config.sources.items():
        if isinstance(target, SimulationTarget) and target.backend not in settings.sandbox_backends:
            raise ValidationFailed(
                f"no sandbox backend {target.backend!r} is registered",
                details={
                    "source": source,
                    "backend": target.backend,
                    "registered": sorted(settings.sandbox_backends),
                },
            )
        if isinstance(target, StagingTarget):
            if target.source == source or target.source in production:
                raise ValidationFailed(
                    f"{target.source!r} is a production source of this agent; a sandbox run "
                    "only reaches a separate staging source",
                    details={"source": source, "staging": target.source},
                )
            kind = session.scalar(
                select(t.ToolSource.kind).where(t.ToolSource.name == target.source)
            )
            if kind is None:
                raise NotFound("tool source", target.source)
            if kind not in STAGING_KINDS:
                raise ValidationFailed(
                    f"tool source {target.source!r} is a {kind} source: staging needs an "
                    "OpenAPI or MCP source",
                    details={"source": source, "staging": target.source, "kind": kind},
                )
    return {source: describe(target) for source, target in targets(spec, config).items()}


@dataclass(frozen=True)
class _Staging:
    row: t.ToolSource
    secrets: SourceSecrets


def _recordings(
    db: Database, workspace_id: str, spec: AgentSpec, tools: list[Tool]
) -> list[Recording]:
    """The newest answered calls (succeeded or failed) of `tools` in the workspace's ledger,
    oldest first (the order a replay answers repeated calls in)."""
    query = (
        select(t.ToolCallRow)
        .where(
            t.ToolCallRow.tool.in_([tool.name for tool in tools]),
            t.ToolCallRow.status.in_(("succeeded", "failed")),
        )
        .order_by(t.ToolCallRow.started_at.desc())
        .limit(MAX_RECORDINGS)
    )
    with db.tenant_session(workspace_id) as session:
        records = [call_record(row) for row in session.scalars(query)]
    return recordings_from_calls(spec, reversed(records))


def _staging_rows(platform: Platform, workspace_id: str, names: set[str]) -> dict[str, _Staging]:
    with platform.db.tenant_session(workspace_id) as session:
        rows = session.scalars(select(t.ToolSource).where(t.ToolSource.name.in_(names))).all()
    found = {
        row.name: _Staging(
            row, SourceSecrets.decrypt(platform.secrets, row.credentials_encrypted, row.name)
        )
        for row in rows
    }
    missing = sorted(names - set(found))
    if missing:
        raise NotFound("tool source", ", ".join(missing))
    return found


def _staging_factory(
    platform: Platform, source: str, staging: _Staging, description: str
) -> WorldFactory:
    def make_clients(spec: AgentSpec) -> Mapping[str, ToolSourceClient]:
        del spec  # the one source this part serves
        return {source: source_client(platform, staging.row, staging.secrets)}

    return StagingWorldFactory(make_clients, description=description)


def open_world(
    platform: Platform, workspace_id: str, spec: AgentSpec, config: WorldConfig
) -> WorldFactory:
    """The run's world: one part per spec source, built from the mapping alone. Blocking (it
    reads the ledger and the staging sources): call it off the event loop."""
    sources = spec_sources(spec)
    plan = targets(spec, config)
    staging_names = {p.source for p in plan.values() if isinstance(p, StagingTarget)}
    staging = _staging_rows(platform, workspace_id, staging_names) if staging_names else {}
    parts: dict[str, WorldFactory] = {}
    for source, target in plan.items():
        description = describe(target)
        if isinstance(target, SimulationTarget):
            ref = platform.settings.sandbox_backends.get(target.backend)
            if ref is None:
                raise ValidationFailed(
                    f"the sandbox backend {target.backend!r} is no longer registered",
                    details={"source": source, "backend": target.backend},
                )
            try:
                parts[source] = load_backend(ref, target.seed)
            except (ValueError, OSError) as exc:
                raise ValidationFailed(
                    f"the sandbox backend {target.backend!r} could not be loaded: {exc}",
                    details={"source": source, "backend": target.backend},
                ) from exc
        elif isinstance(target, StagingTarget):
            parts[source] = _staging_factory(platform, source, staging[target.source], description)
        else:
            recordings = _recordings(platform.db, workspace_id, spec, sources[source])
            parts[source] = RecordedWorldFactory(recordings, description=description)
    return CompositeWorldFactory(parts, fallback=_NOWHERE)
