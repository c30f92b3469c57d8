from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep, VersionNumber
from deputy.domain import resources as r
from deputy.domain.resources import ErrorBody
from deputy.services import knowledge as svc

router = APIRouter(tags=["knowledge"])
PREFIX = "/agents/{agent_id}/knowledge"
EMBEDDER_DOWN: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "The embedding model is unavailable"}
}


@router.post(
    f"{PREFIX}/documents",
    status_code=status.HTTP_201_CREATED,
    response_model=r.KnowledgeDocumentWrite,
    responses={
        200: {
            "model": r.KnowledgeDocumentWrite,
            "description": "A document with this title existed: replaced, or unchanged",
        },
        **EMBEDDER_DOWN,
    },
)
async def add_document(
    agent_id: str,
    body: r.KnowledgeDocumentCreate,
    response: Response,
    platform: PlatformDep,
    principal: PrincipalDep,
) -> r.KnowledgeDocumentWrite:
    """Index an uploaded material (`material_id`) or inline `text` into the agent's knowledge.
    A title that exists is replaced atomically (searches see the old or the new content, never
    a mix); the same content again changes nothing. Markdown, text, HTML, PDF and DOCX."""
    result = await svc.add_document(platform, principal, agent_id, body)
    if result.outcome != "created":
        response.status_code = status.HTTP_200_OK
    return result


@router.get(f"{PREFIX}/documents", response_model=r.Page[r.KnowledgeDocument])
def list_documents(
    agent_id: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[r.KnowledgeDocument]:
    return svc.list_documents(platform, principal, agent_id, limit=limit, cursor=cursor)


@router.get(f"{PREFIX}/documents/{{document_id}}", response_model=r.KnowledgeDocument)
def get_document(
    agent_id: str, document_id: str, platform: PlatformDep, principal: PrincipalDep
) -> r.KnowledgeDocument:
    return svc.get_document(platform, principal, agent_id, document_id)


@router.delete(f"{PREFIX}/documents/{{document_id}}", status_code=status.HTTP_204_NO_CONTENT)
def delete_document(
    agent_id: str, document_id: str, platform: PlatformDep, principal: PrincipalDep
) -> None:
    """Remove a document and its passages from the agent's knowledge; the material stays."""
    svc.delete_document(platform, principal, agent_id, document_id)


@router.post(f"{PREFIX}/search", response_model=r.KnowledgeSearchResult, responses=EMBEDDER_DOWN)
async def search(
    agent_id: str, body: r.KnowledgeSearch, platform: PlatformDep, principal: PrincipalDep
) -> r.KnowledgeSearchResult:
    """The agent's `k` best passages for `query`, each with its citation (document, heading
    path, character span and lines or page). Modes: `bm25`, `vector`, `hybrid` (default)."""
    return await svc.search(platform, principal, agent_id, body)


@router.post(
    "/agents/{agent_id}/versions/{number}/knowledge/index",
    response_model=r.KnowledgeIndexReport,
    responses=EMBEDDER_DOWN,
)
async def index_version_sources(
    agent_id: str, number: VersionNumber, platform: PlatformDep, principal: PrincipalDep
) -> r.KnowledgeIndexReport:
    """Index the knowledge sources that spec version `number` names (each material under its
    source's title). Each source reports created, replaced, unchanged, skipped (no material) or
    failed with the reason; one failure does not stop the others."""
    return await svc.index_version_sources(platform, principal, agent_id, number)
