"""`AsyncDeputyClient`: the asynchronous client of the Deputy REST API. Same namespaces and
methods as `DeputyClient`, awaited; `iter_all` / `iter_pages` are async iterators.

    async with AsyncDeputyClient("http://127.0.0.1:8750", "dpy_…") as client:
        async for agent in client.agents.iter_all():
            print(agent.name)
"""

from __future__ import annotations

import builtins
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from deputy.domain import resources as r
from deputy.domain.tenancy import KeyKind, Role, Scope
from deputy.sdk import _calls as calls
from deputy.sdk._calls import UNSET, Unset
from deputy.sdk._http import AsyncHTTP
from deputy.sdk.alerts import AsyncAlertsAPI, AsyncSlosAPI
from deputy.sdk.billing import AsyncBillingAPI
from deputy.sdk.builds import AsyncBuildsAPI
from deputy.sdk.channels import AsyncChannelsAPI
from deputy.sdk.client import DEFAULT_TIMEOUT, KNOWLEDGE_TIMEOUT, MODEL_TIMEOUT
from deputy.sdk.conversations import AsyncConversationsAPI, AsyncQueueAPI
from deputy.sdk.credentials import resolve_credentials
from deputy.sdk.deployments import AsyncDeploymentsAPI
from deputy.sdk.errors import DeputyConnectionError
from deputy.sdk.improvement import AsyncImprovementAPI
from deputy.sdk.models import Health, Readiness
from deputy.sdk.probes import AsyncProbesAPI
from deputy.sdk.proposals import AsyncAuditAPI, AsyncProposalsAPI
from deputy.sdk.retry import RetryPolicy
from deputy.sdk.sandbox import AsyncSandboxAPI
from deputy.sdk.tools import AsyncToolCallsAPI, AsyncToolSourcesAPI
from deputy.sdk.transfer import (
    Destination,
    DownloadSink,
    Progress,
    UploadSource,
    etag_sha256,
    prepare_upload,
)
from deputy.sdk.usage import AsyncUsageAPI

T = TypeVar("T")
Fetch = Callable[[str | None], Awaitable[r.Page[T]]]


async def aiter_pages(fetch: Fetch[T]) -> AsyncIterator[r.Page[T]]:
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        yield page
        if not page.next_cursor:
            return
        cursor = page.next_cursor


async def aiter_items(fetch: Fetch[T]) -> AsyncIterator[T]:
    async for page in aiter_pages(fetch):
        for item in page.data:
            yield item


class _Namespace:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http


class AsyncWorkspaceAPI(_Namespace):
    async def get(self) -> r.Workspace:
        return await self._http.run(calls.get_workspace())

    async def rename(self, name: str) -> r.Workspace:
        return await self._http.run(calls.rename_workspace(name))

    async def update(
        self, *, name: str | None = None, default_model: str | Unset | None = UNSET
    ) -> r.Workspace:
        return await self._http.run(calls.update_workspace(name, default_model))


class AsyncWorkspacesAPI(_Namespace):
    async def create(
        self, name: str, owner_email: str, owner_name: str, *, idempotency_key: str | None = None
    ) -> r.CreatedWorkspace:
        return await self._http.run(
            calls.create_workspace(name, owner_email, owner_name, idempotency_key)
        )


class AsyncMembersAPI(_Namespace):
    async def add(
        self, email: str, name: str, role: Role, *, idempotency_key: str | None = None
    ) -> r.Member:
        return await self._http.run(calls.add_member(email, name, role, idempotency_key))

    async def list(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[r.Member]:
        return await self._http.run(calls.list_members(limit, cursor))

    def iter_pages(self, *, page_size: int | None = None) -> AsyncIterator[r.Page[r.Member]]:
        return aiter_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def iter_all(self, *, page_size: int | None = None) -> AsyncIterator[r.Member]:
        return aiter_items(lambda cursor: self.list(limit=page_size, cursor=cursor))

    async def get(self, member_id: str) -> r.Member:
        return await self._http.run(calls.get_member(member_id))

    async def update(
        self, member_id: str, *, name: str | None = None, role: Role | None = None
    ) -> r.Member:
        return await self._http.run(calls.update_member(member_id, name, role))

    async def remove(self, member_id: str) -> None:
        await self._http.run(calls.remove_member(member_id))


class AsyncKeysAPI(_Namespace):
    async def create(
        self,
        name: str,
        *,
        kind: KeyKind = "member",
        member_id: str | None = None,
        agent_id: str | None = None,
        scopes: Sequence[Scope] | None = None,
        expires_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> r.CreatedApiKey:
        return await self._http.run(
            calls.create_key(name, kind, member_id, agent_id, scopes, expires_at, idempotency_key)
        )

    async def list(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[r.ApiKeyInfo]:
        return await self._http.run(calls.list_keys(limit, cursor))

    def iter_pages(self, *, page_size: int | None = None) -> AsyncIterator[r.Page[r.ApiKeyInfo]]:
        return aiter_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def iter_all(self, *, page_size: int | None = None) -> AsyncIterator[r.ApiKeyInfo]:
        return aiter_items(lambda cursor: self.list(limit=page_size, cursor=cursor))

    async def get(self, key_id: str) -> r.ApiKeyInfo:
        return await self._http.run(calls.get_key(key_id))

    async def revoke(self, key_id: str, *, idempotency_key: str | None = None) -> r.ApiKeyInfo:
        return await self._http.run(calls.revoke_key(key_id, idempotency_key))


class AsyncMaterialsAPI(_Namespace):
    async def upload(
        self,
        source: UploadSource,
        *,
        filename: str | None = None,
        progress: Progress | None = None,
        idempotency_key: str | None = None,
    ) -> r.Material:
        with prepare_upload(source, filename, progress) as upload:
            return await self._http.run(
                calls.upload_material(upload.filename, upload.stream, idempotency_key)
            )

    async def list(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[r.Material]:
        return await self._http.run(calls.list_materials(limit, cursor))

    def iter_pages(self, *, page_size: int | None = None) -> AsyncIterator[r.Page[r.Material]]:
        return aiter_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def iter_all(self, *, page_size: int | None = None) -> AsyncIterator[r.Material]:
        return aiter_items(lambda cursor: self.list(limit=page_size, cursor=cursor))

    async def get(self, material_id: str) -> r.Material:
        return await self._http.run(calls.get_material(material_id))

    async def download(
        self, material_id: str, destination: Destination, *, progress: Progress | None = None
    ) -> int:
        async with self._http.stream(calls.material_content(material_id)) as response:
            length = response.headers.get("content-length")
            sink = DownloadSink(destination, int(length) if length else None, progress)
            try:
                async for chunk in response.aiter_bytes():
                    sink.write(chunk)
                sink.finish(etag_sha256(response.headers.get("etag")))
            except httpx.TransportError as exc:
                sink.abort()
                message = f"the download of {material_id} broke off: {exc}"
                raise DeputyConnectionError(message) from exc
            except BaseException:
                sink.abort()
                raise
        return sink.written

    async def read(self, material_id: str) -> bytes:
        buffer = io.BytesIO()
        await self.download(material_id, buffer)
        return buffer.getvalue()

    async def delete(self, material_id: str) -> None:
        await self._http.run(calls.delete_material(material_id))


class AsyncVersionsAPI(_Namespace):
    async def create(
        self,
        agent_id: str,
        spec: Mapping[str, Any],
        note: str = "",
        *,
        idempotency_key: str | None = None,
    ) -> r.AgentVersion:
        return await self._http.run(calls.create_version(agent_id, spec, note, idempotency_key))

    async def list(
        self, agent_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[r.AgentVersion]:
        return await self._http.run(calls.list_versions(agent_id, limit, cursor))

    def iter_pages(
        self, agent_id: str, *, page_size: int | None = None
    ) -> AsyncIterator[r.Page[r.AgentVersion]]:
        return aiter_pages(lambda cursor: self.list(agent_id, limit=page_size, cursor=cursor))

    def iter_all(
        self, agent_id: str, *, page_size: int | None = None
    ) -> AsyncIterator[r.AgentVersion]:
        return aiter_items(lambda cursor: self.list(agent_id, limit=page_size, cursor=cursor))

    async def get(self, agent_id: str, number: int) -> r.AgentVersion:
        return await self._http.run(calls.get_version(agent_id, number))

    async def diff(
        self, agent_id: str, number: int, *, against: int | None = None
    ) -> r.VersionDiff:
        """What changed from version `against` (default: the one before) to `number`."""
        return await self._http.run(calls.diff_versions(agent_id, number, against))


class AsyncAgentsAPI(_Namespace):
    def __init__(self, http: AsyncHTTP) -> None:
        super().__init__(http)
        self.versions = AsyncVersionsAPI(http)

    async def create(
        self, name: str, description: str = "", *, idempotency_key: str | None = None
    ) -> r.Agent:
        return await self._http.run(calls.create_agent(name, description, idempotency_key))

    async def list(self, *, limit: int | None = None, cursor: str | None = None) -> r.Page[r.Agent]:
        return await self._http.run(calls.list_agents(limit, cursor))

    def iter_pages(self, *, page_size: int | None = None) -> AsyncIterator[r.Page[r.Agent]]:
        return aiter_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def iter_all(self, *, page_size: int | None = None) -> AsyncIterator[r.Agent]:
        return aiter_items(lambda cursor: self.list(limit=page_size, cursor=cursor))

    async def get(self, agent_id: str) -> r.Agent:
        return await self._http.run(calls.get_agent(agent_id))

    async def update(
        self,
        agent_id: str,
        *,
        description: str | None = None,
        model: str | Unset | None = UNSET,
    ) -> r.Agent:
        return await self._http.run(calls.update_agent(agent_id, description, model))


class AsyncModelsAPI(_Namespace):
    async def list(self) -> r.ModelCatalog:
        return await self._http.run(calls.list_models())

    async def run(
        self,
        prompt: str,
        *,
        model: str | None = None,
        system: str | None = None,
        response_schema: Mapping[str, Any] | None = None,
        max_tokens: int = 256,
        temperature: float | None = None,
        timeout: float | None = MODEL_TIMEOUT,
        idempotency_key: str | None = None,
    ) -> r.ModelTryResult:
        return await self._http.run(
            calls.run_model(
                prompt,
                model,
                system,
                response_schema,
                max_tokens,
                temperature,
                timeout,
                idempotency_key,
            )
        )


class AsyncModelEndpointsAPI(_Namespace):
    async def create(
        self,
        name: str,
        base_url: str,
        api_key: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> r.ModelEndpoint:
        return await self._http.run(
            calls.create_model_endpoint(name, base_url, api_key, idempotency_key)
        )

    async def list(self) -> builtins.list[r.ModelEndpoint]:
        return await self._http.run(calls.list_model_endpoints())

    async def delete(self, name: str) -> None:
        await self._http.run(calls.delete_model_endpoint(name))


class AsyncKnowledgeAPI(_Namespace):
    async def add(
        self,
        agent_id: str,
        *,
        material_id: str | None = None,
        text: str | None = None,
        title: str | None = None,
        media_type: str | None = None,
        timeout: float | None = KNOWLEDGE_TIMEOUT,
        idempotency_key: str | None = None,
    ) -> r.KnowledgeDocumentWrite:
        return await self._http.run(
            calls.add_knowledge_document(
                agent_id, material_id, text, title, media_type, timeout, idempotency_key
            )
        )

    async def list(
        self, agent_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[r.KnowledgeDocument]:
        return await self._http.run(calls.list_knowledge_documents(agent_id, limit, cursor))

    def iter_pages(
        self, agent_id: str, *, page_size: int | None = None
    ) -> AsyncIterator[r.Page[r.KnowledgeDocument]]:
        return aiter_pages(lambda cursor: self.list(agent_id, limit=page_size, cursor=cursor))

    def iter_all(
        self, agent_id: str, *, page_size: int | None = None
    ) -> AsyncIterator[r.KnowledgeDocument]:
        return aiter_items(lambda cursor: self.list(agent_id, limit=page_size, cursor=cursor))

    async def get(self, agent_id: str, document_id: str) -> r.KnowledgeDocument:
        return await self._http.run(calls.get_knowledge_document(agent_id, document_id))

    async def delete(self, agent_id: str, document_id: str) -> None:
        await self._http.run(calls.delete_knowledge_document(agent_id, document_id))

    async def index_version(
        self,
        agent_id: str,
        number: int,
        *,
        timeout: float | None = KNOWLEDGE_TIMEOUT,
        idempotency_key: str | None = None,
    ) -> r.KnowledgeIndexReport:
        """Index the knowledge sources spec version `number` names; a report per source."""
        return await self._http.run(
            calls.index_version_knowledge(agent_id, number, timeout, idempotency_key)
        )

    async def search(
        self,
        agent_id: str,
        query: str,
        *,
        k: int = 5,
        mode: r.KnowledgeMode = "hybrid",
        idempotency_key: str | None = None,
    ) -> r.KnowledgeSearchResult:
        return await self._http.run(
            calls.search_knowledge(agent_id, query, k, mode, idempotency_key)
        )


class AsyncDeputyClient:
    """The async twin of `DeputyClient`; configured the same way."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        require_key: bool = True,
    ) -> None:
        resolved = resolve_credentials(base_url, api_key, require_key=require_key)
        self.base_url = resolved.url
        self.api_key = resolved.api_key
        self._http = AsyncHTTP(
            resolved.url,
            resolved.api_key,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            transport=transport,
        )
        self.workspace = AsyncWorkspaceAPI(self._http)
        self.workspaces = AsyncWorkspacesAPI(self._http)
        self.members = AsyncMembersAPI(self._http)
        self.keys = AsyncKeysAPI(self._http)
        self.materials = AsyncMaterialsAPI(self._http)
        self.agents = AsyncAgentsAPI(self._http)
        self.models = AsyncModelsAPI(self._http)
        self.model_endpoints = AsyncModelEndpointsAPI(self._http)
        self.tool_sources = AsyncToolSourcesAPI(self._http)
        self.tool_calls = AsyncToolCallsAPI(self._http)
        self.knowledge = AsyncKnowledgeAPI(self._http)
        self.conversations = AsyncConversationsAPI(self._http)
        self.queue = AsyncQueueAPI(self._http)
        self.builds = AsyncBuildsAPI(self._http)
        self.sandbox = AsyncSandboxAPI(self._http)
        self.proposals = AsyncProposalsAPI(self._http)
        self.channels = AsyncChannelsAPI(self._http)
        self.billing = AsyncBillingAPI(self._http)
        self.probes = AsyncProbesAPI(self._http)
        self.deployments = AsyncDeploymentsAPI(self._http)
        self.audit = AsyncAuditAPI(self._http)
        self.improvement = AsyncImprovementAPI(self._http)
        self.alerts = AsyncAlertsAPI(self._http)
        self.slos = AsyncSlosAPI(self._http)
        self.usage = AsyncUsageAPI(self._http)

    @classmethod
    def from_env(cls, **options: Any) -> AsyncDeputyClient:
        return cls(None, None, **options)

    async def health(self) -> Health:
        return await self._http.run(calls.health())

    async def ready(self) -> Readiness:
        return await self._http.run(calls.ready())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncDeputyClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
