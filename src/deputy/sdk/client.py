"""`DeputyClient`: the synchronous client of the Deputy REST API.

from deputy.sdk import DeputyClient

with DeputyClient("http://127.0.0.1:8750", "dpy_…") as client:
    material = client.materials.upload("refund-policy.md")
    for agent in client.agents.iter_all():
        print(agent.name)
"""

from __future__ import annotations

import builtins
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from deputy.domain import resources as r
from deputy.domain.tenancy import KeyKind, Role, Scope
from deputy.sdk import _calls as calls
from deputy.sdk._calls import UNSET, Unset
from deputy.sdk._http import SyncHTTP
from deputy.sdk.alerts import AlertsAPI, SlosAPI
from deputy.sdk.billing import BillingAPI
from deputy.sdk.builds import BuildsAPI
from deputy.sdk.channels import ChannelsAPI
from deputy.sdk.conversations import ConversationsAPI, QueueAPI
from deputy.sdk.credentials import resolve_credentials
from deputy.sdk.deployments import DeploymentsAPI
from deputy.sdk.errors import DeputyConnectionError
from deputy.sdk.improvement import ImprovementAPI
from deputy.sdk.models import Health, Readiness
from deputy.sdk.probes import ProbesAPI
from deputy.sdk.proposals import AuditAPI, ProposalsAPI
from deputy.sdk.retry import RetryPolicy
from deputy.sdk.sandbox import SandboxAPI
from deputy.sdk.tools import ToolCallsAPI, ToolSourcesAPI
from deputy.sdk.transfer import (
    Destination,
    DownloadSink,
    Progress,
    UploadSource,
    etag_sha256,
    prepare_upload,
)
from deputy.sdk.usage import UsageAPI

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0
# A model call may take a minute on a local model (and the server retries and falls back).
MODEL_TIMEOUT = 180.0
# Adding a document embeds all of it on the server (~24 passages/s with the bundled model).
KNOWLEDGE_TIMEOUT = 600.0


def iter_pages(fetch: Callable[[str | None], r.Page[T]]) -> Iterator[r.Page[T]]:
    """Every page, following `next_cursor` from the first page to the last."""
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield page
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def iter_items(fetch: Callable[[str | None], r.Page[T]]) -> Iterator[T]:
    for page in iter_pages(fetch):
        yield from page.data


class _Namespace:
    def __init__(self, http: SyncHTTP) -> None:
        self._http = http


class WorkspaceAPI(_Namespace):
    """The caller's own workspace."""

    def get(self) -> r.Workspace:
        return self._http.run(calls.get_workspace())

    def rename(self, name: str) -> r.Workspace:
        return self._http.run(calls.rename_workspace(name))

    def update(
        self, *, name: str | None = None, default_model: str | Unset | None = UNSET
    ) -> r.Workspace:
        """Change the name and/or the default model of the workspace's agents;
        `default_model=None` returns to the platform default (not giving it leaves it)."""
        return self._http.run(calls.update_workspace(name, default_model))


class WorkspacesAPI(_Namespace):
    """Creating workspaces (the platform operator's key only)."""

    def create(
        self, name: str, owner_email: str, owner_name: str, *, idempotency_key: str | None = None
    ) -> r.CreatedWorkspace:
        return self._http.run(
            calls.create_workspace(name, owner_email, owner_name, idempotency_key)
        )


class MembersAPI(_Namespace):
    def add(
        self, email: str, name: str, role: Role, *, idempotency_key: str | None = None
    ) -> r.Member:
        return self._http.run(calls.add_member(email, name, role, idempotency_key))

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> r.Page[r.Member]:
        return self._http.run(calls.list_members(limit, cursor))

    def iter_pages(self, *, page_size: int | None = None) -> Iterator[r.Page[r.Member]]:
        return iter_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def iter_all(self, *, page_size: int | None = None) -> Iterator[r.Member]:
        return iter_items(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def get(self, member_id: str) -> r.Member:
        return self._http.run(calls.get_member(member_id))

    def update(
        self, member_id: str, *, name: str | None = None, role: Role | None = None
    ) -> r.Member:
        return self._http.run(calls.update_member(member_id, name, role))

    def remove(self, member_id: str) -> None:
        """Remove a member and revoke their keys."""
        self._http.run(calls.remove_member(member_id))


class KeysAPI(_Namespace):
    def create(
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
        """Create a key; its `secret` is in this answer only."""
        return self._http.run(
            calls.create_key(name, kind, member_id, agent_id, scopes, expires_at, idempotency_key)
        )

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> r.Page[r.ApiKeyInfo]:
        return self._http.run(calls.list_keys(limit, cursor))

    def iter_pages(self, *, page_size: int | None = None) -> Iterator[r.Page[r.ApiKeyInfo]]:
        return iter_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def iter_all(self, *, page_size: int | None = None) -> Iterator[r.ApiKeyInfo]:
        return iter_items(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def get(self, key_id: str) -> r.ApiKeyInfo:
        return self._http.run(calls.get_key(key_id))

    def revoke(self, key_id: str, *, idempotency_key: str | None = None) -> r.ApiKeyInfo:
        return self._http.run(calls.revoke_key(key_id, idempotency_key))


class MaterialsAPI(_Namespace):
    def upload(
        self,
        source: UploadSource,
        *,
        filename: str | None = None,
        progress: Progress | None = None,
        idempotency_key: str | None = None,
    ) -> r.Material:
        """Upload a file: a path, or bytes / a binary file with `filename`."""
        with prepare_upload(source, filename, progress) as upload:
            return self._http.run(
                calls.upload_material(upload.filename, upload.stream, idempotency_key)
            )

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> r.Page[r.Material]:
        return self._http.run(calls.list_materials(limit, cursor))

    def iter_pages(self, *, page_size: int | None = None) -> Iterator[r.Page[r.Material]]:
        return iter_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def iter_all(self, *, page_size: int | None = None) -> Iterator[r.Material]:
        return iter_items(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def get(self, material_id: str) -> r.Material:
        return self._http.run(calls.get_material(material_id))

    def download(
        self, material_id: str, destination: Destination, *, progress: Progress | None = None
    ) -> int:
        """Stream the content to a path or binary file, verified against its sha256; a path
        is only written once the whole content has arrived. Returns the bytes written."""
        with self._http.stream(calls.material_content(material_id)) as response:
            length = response.headers.get("content-length")
            sink = DownloadSink(destination, int(length) if length else None, progress)
            try:
                for chunk in response.iter_bytes():
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

    def read(self, material_id: str) -> bytes:
        """The content in memory (for small files; prefer `download` for large ones)."""
        buffer = io.BytesIO()
        self.download(material_id, buffer)
        return buffer.getvalue()

    def delete(self, material_id: str) -> None:
        self._http.run(calls.delete_material(material_id))


class VersionsAPI(_Namespace):
    """An agent's immutable spec versions."""

    def create(
        self,
        agent_id: str,
        spec: Mapping[str, Any],
        note: str = "",
        *,
        idempotency_key: str | None = None,
    ) -> r.AgentVersion:
        return self._http.run(calls.create_version(agent_id, spec, note, idempotency_key))

    def list(
        self, agent_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[r.AgentVersion]:
        return self._http.run(calls.list_versions(agent_id, limit, cursor))

    def iter_pages(
        self, agent_id: str, *, page_size: int | None = None
    ) -> Iterator[r.Page[r.AgentVersion]]:
        return iter_pages(lambda cursor: self.list(agent_id, limit=page_size, cursor=cursor))

    def iter_all(self, agent_id: str, *, page_size: int | None = None) -> Iterator[r.AgentVersion]:
        return iter_items(lambda cursor: self.list(agent_id, limit=page_size, cursor=cursor))

    def get(self, agent_id: str, number: int) -> r.AgentVersion:
        return self._http.run(calls.get_version(agent_id, number))

    def diff(self, agent_id: str, number: int, *, against: int | None = None) -> r.VersionDiff:
        """What changed from version `against` (default: the one before) to `number`."""
        return self._http.run(calls.diff_versions(agent_id, number, against))


class AgentsAPI(_Namespace):
    def __init__(self, http: SyncHTTP) -> None:
        super().__init__(http)
        self.versions = VersionsAPI(http)

    def create(
        self, name: str, description: str = "", *, idempotency_key: str | None = None
    ) -> r.Agent:
        return self._http.run(calls.create_agent(name, description, idempotency_key))

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> r.Page[r.Agent]:
        return self._http.run(calls.list_agents(limit, cursor))

    def iter_pages(self, *, page_size: int | None = None) -> Iterator[r.Page[r.Agent]]:
        return iter_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def iter_all(self, *, page_size: int | None = None) -> Iterator[r.Agent]:
        return iter_items(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def get(self, agent_id: str) -> r.Agent:
        return self._http.run(calls.get_agent(agent_id))

    def update(
        self,
        agent_id: str,
        *,
        description: str | None = None,
        model: str | Unset | None = UNSET,
    ) -> r.Agent:
        """Change the description and/or the model; `model=None` returns the agent to its
        workspace's default model (not giving it leaves it)."""
        return self._http.run(calls.update_agent(agent_id, description, model))


class ModelsAPI(_Namespace):
    """The models the workspace can use, and one-off prompts to them."""

    def list(self) -> r.ModelCatalog:
        """The local catalog with each model's state, the endpoints and hosted providers."""
        return self._http.run(calls.list_models())

    def run(
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
        """Send one prompt to `model` (default: the workspace's), metered to the workspace.
        With `response_schema` the answer satisfies it and is in `parsed`. `timeout` is the
        seconds to wait for the answer (None: the client's timeout). A model's failure
        (`UnavailableError`, `ModelFailedError`) is raised without retrying."""
        return self._http.run(
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


class ModelEndpointsAPI(_Namespace):
    """The workspace's OpenAI-compatible model servers; their models are named
    `openai-compatible:<name>/<model>`. Keys are stored encrypted and never returned."""

    def create(
        self,
        name: str,
        base_url: str,
        api_key: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> r.ModelEndpoint:
        return self._http.run(calls.create_model_endpoint(name, base_url, api_key, idempotency_key))

    def list(self) -> builtins.list[r.ModelEndpoint]:
        return self._http.run(calls.list_model_endpoints())

    def delete(self, name: str) -> None:
        self._http.run(calls.delete_model_endpoint(name))


class KnowledgeAPI(_Namespace):
    """An agent's knowledge: documents it answers from, and search over them with citations."""

    def add(
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
        """Index an uploaded material, or inline `text` (with a `title`; `media_type`
        `text/markdown` by default, or `text/plain`, `text/html`). A document with the same
        title is replaced atomically; the same content again is `unchanged`."""
        return self._http.run(
            calls.add_knowledge_document(
                agent_id, material_id, text, title, media_type, timeout, idempotency_key
            )
        )

    def list(
        self, agent_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[r.KnowledgeDocument]:
        return self._http.run(calls.list_knowledge_documents(agent_id, limit, cursor))

    def iter_pages(
        self, agent_id: str, *, page_size: int | None = None
    ) -> Iterator[r.Page[r.KnowledgeDocument]]:
        return iter_pages(lambda cursor: self.list(agent_id, limit=page_size, cursor=cursor))

    def iter_all(
        self, agent_id: str, *, page_size: int | None = None
    ) -> Iterator[r.KnowledgeDocument]:
        return iter_items(lambda cursor: self.list(agent_id, limit=page_size, cursor=cursor))

    def get(self, agent_id: str, document_id: str) -> r.KnowledgeDocument:
        return self._http.run(calls.get_knowledge_document(agent_id, document_id))

    def delete(self, agent_id: str, document_id: str) -> None:
        self._http.run(calls.delete_knowledge_document(agent_id, document_id))

    def index_version(
        self,
        agent_id: str,
        number: int,
        *,
        timeout: float | None = KNOWLEDGE_TIMEOUT,
        idempotency_key: str | None = None,
    ) -> r.KnowledgeIndexReport:
        """Index the knowledge sources spec version `number` names; a report per source."""
        return self._http.run(
            calls.index_version_knowledge(agent_id, number, timeout, idempotency_key)
        )

    def search(
        self,
        agent_id: str,
        query: str,
        *,
        k: int = 5,
        mode: r.KnowledgeMode = "hybrid",
        idempotency_key: str | None = None,
    ) -> r.KnowledgeSearchResult:
        """The agent's `k` best passages for `query`, each with its citation."""
        return self._http.run(calls.search_knowledge(agent_id, query, k, mode, idempotency_key))


class DeputyClient:
    """A client of one Deputy server with one API key.

    `base_url` and `api_key` default to `DEPUTY_URL` / `DEPUTY_API_KEY`, then to the login
    saved by `deputy login`. `transport` replaces the network (an in-process app in tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        require_key: bool = True,
    ) -> None:
        resolved = resolve_credentials(base_url, api_key, require_key=require_key)
        self.base_url = resolved.url
        self.api_key = resolved.api_key
        self._http = SyncHTTP(
            resolved.url,
            resolved.api_key,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            transport=transport,
        )
        self.workspace = WorkspaceAPI(self._http)
        self.workspaces = WorkspacesAPI(self._http)
        self.members = MembersAPI(self._http)
        self.keys = KeysAPI(self._http)
        self.materials = MaterialsAPI(self._http)
        self.agents = AgentsAPI(self._http)
        self.models = ModelsAPI(self._http)
        self.model_endpoints = ModelEndpointsAPI(self._http)
        self.tool_sources = ToolSourcesAPI(self._http)
        self.tool_calls = ToolCallsAPI(self._http)
        self.knowledge = KnowledgeAPI(self._http)
        self.conversations = ConversationsAPI(self._http)
        self.queue = QueueAPI(self._http)
        self.builds = BuildsAPI(self._http)
        self.sandbox = SandboxAPI(self._http)
        self.proposals = ProposalsAPI(self._http)
        self.channels = ChannelsAPI(self._http)
        self.billing = BillingAPI(self._http)
        self.probes = ProbesAPI(self._http)
        self.deployments = DeploymentsAPI(self._http)
        self.audit = AuditAPI(self._http)
        self.improvement = ImprovementAPI(self._http)
        self.alerts = AlertsAPI(self._http)
        self.slos = SlosAPI(self._http)
        self.usage = UsageAPI(self._http)

    @classmethod
    def from_env(cls, **options: Any) -> DeputyClient:
        """Configured by `DEPUTY_URL` / `DEPUTY_API_KEY` (or the saved login)."""
        return cls(None, None, **options)

    def health(self) -> Health:
        """Liveness: the server answers."""
        return self._http.run(calls.health())

    def ready(self) -> Readiness:
        """Readiness: the database and background jobs; not ready is an answer, not an error."""
        return self._http.run(calls.ready())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DeputyClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
