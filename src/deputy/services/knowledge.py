"""An agent's knowledge: documents it answers from, and search over them with citations.

Reading and searching an agent's knowledge needs `agents:read`; adding and removing documents
`agents:write` (and `materials:read` to index an uploaded material). The work itself is
`platform.knowledge` (`deputy.knowledge.KnowledgeBase`), which the runtime also uses directly.
"""

from __future__ import annotations

import anyio
from sqlalchemy import select

from deputy.domain import resources as r
from deputy.domain.errors import DeputyError, NotFound
from deputy.domain.tenancy import Principal, Scope
from deputy.knowledge import RetrievedChunk, StoredDocument
from deputy.services import agents
from deputy.services.access import require, tenant
from deputy.services.knowledge_store import stored_document
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.store import tables as t


def document_resource(document: StoredDocument) -> r.KnowledgeDocument:
    return r.KnowledgeDocument(
        id=document.id,
        agent_id=document.agent_id,
        title=document.title,
        material_id=document.material_id,
        media_type=document.media_type,
        sha256=document.sha256,
        size_bytes=document.size_bytes,
        chunk_count=document.chunk_count,
        revision=document.revision,
        embedding_model=document.embedding_model,
        created_at=document.created_at,
        updated_at=document.updated_at,
    )


def hit_resource(hit: RetrievedChunk) -> r.KnowledgeHit:
    citation = hit.citation
    locator = citation.locator
    return r.KnowledgeHit(
        chunk_id=hit.chunk_id,
        text=hit.text,
        score=hit.score,
        citation=r.KnowledgeCitation(
            document_id=citation.document_id,
            title=citation.title,
            material_id=citation.material_id,
            heading_path=list(citation.heading_path),
            char_start=citation.char_start,
            char_end=citation.char_end,
            locator=r.KnowledgeLocator(
                kind=locator.kind, start=locator.start, end=locator.end, label=locator.label
            ),
        ),
    )


def _check_agent(platform: Platform, principal: Principal, agent_id: str, scope: Scope) -> None:
    with tenant(platform, principal, scope) as session:
        if session.scalar(select(t.Agent.id).where(t.Agent.id == agent_id)) is None:
            raise NotFound("agent", agent_id)


def _material_source(
    platform: Platform, principal: Principal, agent_id: str, material_id: str
) -> tuple[bytes, str, str]:
    """The material's bytes, media type and file name, once the agent is known to exist."""
    _check_agent(platform, principal, agent_id, "agents:write")
    with tenant(platform, principal, "materials:read") as session:
        row = session.scalar(select(t.Material).where(t.Material.id == material_id))
        if row is None:
            raise NotFound("material", material_id)
        workspace_id, media_type, filename = row.workspace_id, row.media_type, row.filename
    data = b"".join(platform.blobs.read_chunks(workspace_id, material_id))
    return data, media_type, filename


async def add_document(
    platform: Platform, principal: Principal, agent_id: str, body: r.KnowledgeDocumentCreate
) -> r.KnowledgeDocumentWrite:
    """Index a material or inline text into the agent's knowledge under its title: a new
    document, an atomic replacement of the one with that title, or nothing when unchanged."""
    require(principal, "agents:write")
    material_id: str | None = None
    if isinstance(body, r.KnowledgeFromMaterial):
        require(principal, "materials:read")
        data, media_type, filename = await anyio.to_thread.run_sync(
            _material_source, platform, principal, agent_id, body.material_id
        )
        material_id, title = body.material_id, body.title or filename
    else:
        await anyio.to_thread.run_sync(_check_agent, platform, principal, agent_id, "agents:write")
        data, media_type, title = body.text.encode("utf-8"), body.media_type, body.title
    result = await platform.knowledge.add(
        principal.workspace_id,
        agent_id,
        data=data,
        media_type=media_type,
        title=title.strip(),
        material_id=material_id,
    )
    return r.KnowledgeDocumentWrite(
        document=document_resource(result.document), outcome=result.outcome
    )


def list_documents(
    platform: Platform, principal: Principal, agent_id: str, *, limit: int, cursor: str | None
) -> r.Page[r.KnowledgeDocument]:
    _check_agent(platform, principal, agent_id, "agents:read")
    with tenant(platform, principal, "agents:read") as session:
        return paginate(
            session,
            select(t.KnowledgeDocument).where(t.KnowledgeDocument.agent_id == agent_id),
            t.KnowledgeDocument.id,
            limit=limit,
            cursor=cursor,
            to_resource=lambda row: document_resource(stored_document(row)),
        )


def get_document(
    platform: Platform, principal: Principal, agent_id: str, document_id: str
) -> r.KnowledgeDocument:
    with tenant(platform, principal, "agents:read") as session:
        row = session.scalar(
            select(t.KnowledgeDocument).where(
                t.KnowledgeDocument.id == document_id, t.KnowledgeDocument.agent_id == agent_id
            )
        )
        if row is None:
            raise NotFound("knowledge document", document_id)
        return document_resource(stored_document(row))


def delete_document(
    platform: Platform, principal: Principal, agent_id: str, document_id: str
) -> None:
    """Remove a document and its chunks from the agent's knowledge (the material stays)."""
    require(principal, "agents:write")
    if not platform.knowledge.store.delete_document(principal.workspace_id, agent_id, document_id):
        raise NotFound("knowledge document", document_id)


async def search(
    platform: Platform, principal: Principal, agent_id: str, body: r.KnowledgeSearch
) -> r.KnowledgeSearchResult:
    """The agent's best passages for a query, each with its citation."""
    await anyio.to_thread.run_sync(_check_agent, platform, principal, agent_id, "agents:read")
    hits = await platform.knowledge.search(
        principal.workspace_id, agent_id, body.query, k=body.k, mode=body.mode
    )
    return r.KnowledgeSearchResult(
        query=body.query, mode=body.mode, hits=[hit_resource(hit) for hit in hits]
    )


async def index_version_sources(
    platform: Platform, principal: Principal, agent_id: str, number: int
) -> r.KnowledgeIndexReport:
    """Index every knowledge source of the agent's spec version `number` that names a material,
    under the source's title (replacing a document of that title atomically, or leaving it when
    unchanged). A source that fails is reported with its reason and the others go on; sources
    without a material are skipped. Documents the spec does not name are left alone."""
    version = await anyio.to_thread.run_sync(
        agents.get_version, platform, principal, agent_id, number
    )
    spec = agents.validate_spec(version.spec)
    results: list[r.KnowledgeSourceIndexed] = []
    for source in spec.knowledge.sources:
        if source.material is None:
            results.append(
                r.KnowledgeSourceIndexed(
                    source_id=source.id, outcome="skipped", reason="the source names no material"
                )
            )
            continue
        body = r.KnowledgeFromMaterial(material_id=source.material, title=source.title)
        try:
            written = await add_document(platform, principal, agent_id, body)
        except DeputyError as exc:
            if exc.code in {"permission_denied", "unauthenticated"}:
                raise
            results.append(
                r.KnowledgeSourceIndexed(source_id=source.id, outcome="failed", reason=exc.message)
            )
            continue
        results.append(
            r.KnowledgeSourceIndexed(
                source_id=source.id, outcome=written.outcome, document=written.document
            )
        )
    return r.KnowledgeIndexReport(agent_id=agent_id, version=number, sources=results)
