"""Every API operation described once, as data: method, path, body, how to parse the answer.

The sync and async clients execute the same `Call`s, so paths, bodies and parsing live here
and nowhere else.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Final, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from deputy.domain import resources as r
from deputy.domain.tenancy import KeyKind, Role, Scope
from deputy.sdk.models import Health, Readiness

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Parser = Callable[[httpx.Response], T]
FileField = tuple[str, IO[bytes], str]


class Unset(enum.Enum):
    """The type of `UNSET`: an argument that was not given, as opposed to `None` (which, for a
    model setting, means "back to the default")."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET

# What a model's failure looks like when Deputy reports it. The model already ran (and the
# server already retried it); sending the request again would spend the tokens again.
MODEL_FAILURE_CODES: Final = frozenset({"unavailable", "model_error", "model_output_invalid"})


@dataclass(frozen=True)
class Call(Generic[T]):
    method: Method
    path: str
    parse: Parser[T]
    params: Mapping[str, str | int] | None = None
    json: Any = None
    files: Mapping[str, FileField] | None = None
    idempotency_key: str | None = None
    retry: bool = True
    # A DELETE answered 404 after a retry: the first attempt did it, the answer was lost.
    gone_is_done: bool = False
    # Error statuses handed to `parse` instead of raised (the readiness probe's 503).
    accept_statuses: frozenset[int] = frozenset()
    # Error codes (Deputy's `X-Error-Code`) that are the call's final answer: never retried,
    # although their status (502, 503) is retried for other calls.
    final_codes: frozenset[str] = frozenset()
    # Seconds to wait for this call's answer; None: the client's timeout.
    timeout: float | None = None
    # The media type asked for, when not JSON (`text/event-stream` for a streamed turn).
    accept: str | None = None

    @property
    def idempotent(self) -> bool:
        """Safe to send twice: reads, setters, deletes, and POSTs carrying an Idempotency-Key."""
        return self.method != "POST" or self.idempotency_key is not None


def _model(model: type[M]) -> Parser[M]:
    def parse(response: httpx.Response) -> M:
        return model.model_validate_json(response.content)

    return parse


def _page(item: type[M]) -> Parser[r.Page[M]]:
    page_model: type[r.Page[M]] = r.Page[item]  # type: ignore[valid-type]

    def parse(response: httpx.Response) -> r.Page[M]:
        return page_model.model_validate_json(response.content)

    return parse


def _list(item: type[M]) -> Parser[list[M]]:
    adapter = TypeAdapter(list[item])  # type: ignore[valid-type]

    def parse(response: httpx.Response) -> list[M]:
        result: list[M] = adapter.validate_json(response.content)
        return result

    return parse


def _nothing(_response: httpx.Response) -> None:
    return None


def _seg(value: str | int) -> str:
    """A path segment, escaped so an id can never change the route."""
    text = str(value)
    if not text:
        raise ValueError("an id must not be empty")
    return quote(text, safe="")


def _key(idempotency_key: str | None) -> str:
    return idempotency_key or str(uuid.uuid4())


def _list_params(limit: int | None, cursor: str | None) -> dict[str, str | int]:
    params: dict[str, str | int] = {}
    if limit is not None:
        params["limit"] = limit
    if cursor:
        params["cursor"] = cursor
    return params


def _post(path: str, parse: Parser[T], body: Any, idempotency_key: str | None) -> Call[T]:
    return Call("POST", path, parse, json=body, idempotency_key=_key(idempotency_key))


# ---- probes ------------------------------------------------------------------------------


def health() -> Call[Health]:
    return Call("GET", "/healthz", _model(Health))


def _readiness(response: httpx.Response) -> Readiness:
    if response.status_code == 503:  # not ready: the error body carries the checks
        details = response.json().get("error", {}).get("details", {})
        return Readiness(status="not_ready", checks=details.get("checks", {}))
    return Readiness.model_validate_json(response.content)


def ready() -> Call[Readiness]:
    return Call("GET", "/readyz", _readiness, retry=False, accept_statuses=frozenset({503}))


# ---- workspaces and members --------------------------------------------------------------


def get_workspace() -> Call[r.Workspace]:
    return Call("GET", "/v1/workspace", _model(r.Workspace))


def rename_workspace(name: str) -> Call[r.Workspace]:
    return Call("PATCH", "/v1/workspace", _model(r.Workspace), json={"name": name})


def update_workspace(name: str | None, default_model: str | Unset | None) -> Call[r.Workspace]:
    """`default_model=None` returns the workspace to the platform default; UNSET leaves it."""
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if not isinstance(default_model, Unset):
        body["default_model"] = default_model
    return Call("PATCH", "/v1/workspace", _model(r.Workspace), json=body)


def create_workspace(
    name: str, owner_email: str, owner_name: str, idempotency_key: str | None
) -> Call[r.CreatedWorkspace]:
    body = {"name": name, "owner_email": owner_email, "owner_name": owner_name}
    return _post("/v1/workspaces", _model(r.CreatedWorkspace), body, idempotency_key)


def add_member(email: str, name: str, role: Role, idempotency_key: str | None) -> Call[r.Member]:
    body = {"email": email, "name": name, "role": role}
    return _post("/v1/members", _model(r.Member), body, idempotency_key)


def list_members(limit: int | None, cursor: str | None) -> Call[r.Page[r.Member]]:
    return Call("GET", "/v1/members", _page(r.Member), params=_list_params(limit, cursor))


def get_member(member_id: str) -> Call[r.Member]:
    return Call("GET", f"/v1/members/{_seg(member_id)}", _model(r.Member))


def update_member(member_id: str, name: str | None, role: Role | None) -> Call[r.Member]:
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if role is not None:
        body["role"] = role
    return Call("PATCH", f"/v1/members/{_seg(member_id)}", _model(r.Member), json=body)


def remove_member(member_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/members/{_seg(member_id)}", _nothing, gone_is_done=True)


# ---- keys --------------------------------------------------------------------------------


def create_key(
    name: str,
    kind: KeyKind,
    member_id: str | None,
    agent_id: str | None,
    scopes: Sequence[Scope] | None,
    expires_at: datetime | None,
    idempotency_key: str | None,
) -> Call[r.CreatedApiKey]:
    body: dict[str, Any] = {"name": name, "kind": kind}
    if member_id is not None:
        body["member_id"] = member_id
    if agent_id is not None:
        body["agent_id"] = agent_id
    if scopes is not None:
        body["scopes"] = list(scopes)
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat()
    return _post("/v1/keys", _model(r.CreatedApiKey), body, idempotency_key)


def list_keys(limit: int | None, cursor: str | None) -> Call[r.Page[r.ApiKeyInfo]]:
    return Call("GET", "/v1/keys", _page(r.ApiKeyInfo), params=_list_params(limit, cursor))


def get_key(key_id: str) -> Call[r.ApiKeyInfo]:
    return Call("GET", f"/v1/keys/{_seg(key_id)}", _model(r.ApiKeyInfo))


def revoke_key(key_id: str, idempotency_key: str | None) -> Call[r.ApiKeyInfo]:
    return _post(f"/v1/keys/{_seg(key_id)}/revoke", _model(r.ApiKeyInfo), None, idempotency_key)


# ---- materials ---------------------------------------------------------------------------


def upload_material(
    filename: str, stream: IO[bytes], idempotency_key: str | None
) -> Call[r.Material]:
    return Call(
        "POST",
        "/v1/materials",
        _model(r.Material),
        files={"file": (filename, stream, "application/octet-stream")},
        idempotency_key=_key(idempotency_key),
    )


def list_materials(limit: int | None, cursor: str | None) -> Call[r.Page[r.Material]]:
    return Call("GET", "/v1/materials", _page(r.Material), params=_list_params(limit, cursor))


def get_material(material_id: str) -> Call[r.Material]:
    return Call("GET", f"/v1/materials/{_seg(material_id)}", _model(r.Material))


def material_content(material_id: str) -> Call[None]:
    """Streamed by the client; `parse` is unused."""
    return Call("GET", f"/v1/materials/{_seg(material_id)}/content", _nothing)


def delete_material(material_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/materials/{_seg(material_id)}", _nothing, gone_is_done=True)


# ---- agents and versions -----------------------------------------------------------------


def create_agent(name: str, description: str, idempotency_key: str | None) -> Call[r.Agent]:
    body = {"name": name, "description": description}
    return _post("/v1/agents", _model(r.Agent), body, idempotency_key)


def list_agents(limit: int | None, cursor: str | None) -> Call[r.Page[r.Agent]]:
    return Call("GET", "/v1/agents", _page(r.Agent), params=_list_params(limit, cursor))


def get_agent(agent_id: str) -> Call[r.Agent]:
    return Call("GET", f"/v1/agents/{_seg(agent_id)}", _model(r.Agent))


def update_agent(
    agent_id: str, description: str | None, model: str | Unset | None
) -> Call[r.Agent]:
    """`model=None` returns the agent to its workspace's default model; UNSET leaves it."""
    body: dict[str, Any] = {}
    if description is not None:
        body["description"] = description
    if not isinstance(model, Unset):
        body["model"] = model
    return Call("PATCH", f"/v1/agents/{_seg(agent_id)}", _model(r.Agent), json=body)


def create_version(
    agent_id: str, spec: Mapping[str, Any], note: str, idempotency_key: str | None
) -> Call[r.AgentVersion]:
    body = {"spec": dict(spec), "note": note}
    return _post(
        f"/v1/agents/{_seg(agent_id)}/versions", _model(r.AgentVersion), body, idempotency_key
    )


def list_versions(
    agent_id: str, limit: int | None, cursor: str | None
) -> Call[r.Page[r.AgentVersion]]:
    return Call(
        "GET",
        f"/v1/agents/{_seg(agent_id)}/versions",
        _page(r.AgentVersion),
        params=_list_params(limit, cursor),
    )


def get_version(agent_id: str, number: int) -> Call[r.AgentVersion]:
    return Call(
        "GET", f"/v1/agents/{_seg(agent_id)}/versions/{_seg(number)}", _model(r.AgentVersion)
    )


def diff_versions(agent_id: str, number: int, against: int | None) -> Call[r.VersionDiff]:
    return Call(
        "GET",
        f"/v1/agents/{_seg(agent_id)}/versions/{_seg(number)}/diff",
        _model(r.VersionDiff),
        params=None if against is None else {"against": against},
    )


# ---- models and model endpoints ----------------------------------------------------------


def list_models() -> Call[r.ModelCatalog]:
    return Call("GET", "/v1/models", _model(r.ModelCatalog))


def run_model(
    prompt: str,
    model: str | None,
    system: str | None,
    response_schema: Mapping[str, Any] | None,
    max_tokens: int,
    temperature: float | None,
    timeout: float | None,
    idempotency_key: str | None,
) -> Call[r.ModelTryResult]:
    """One prompt to a model. It spends tokens, so it carries an Idempotency-Key (a resend after
    a lost answer replays the stored one) and a model's failure is final, not retried."""
    body: dict[str, Any] = {"prompt": prompt, "max_tokens": max_tokens}
    if model is not None:
        body["model"] = model
    if system is not None:
        body["system"] = system
    if response_schema is not None:
        body["response_schema"] = dict(response_schema)
    if temperature is not None:
        body["temperature"] = temperature
    return Call(
        "POST",
        "/v1/models/try",
        _model(r.ModelTryResult),
        json=body,
        idempotency_key=_key(idempotency_key),
        final_codes=MODEL_FAILURE_CODES,
        timeout=timeout,
    )


def create_model_endpoint(
    name: str, base_url: str, api_key: str | None, idempotency_key: str | None
) -> Call[r.ModelEndpoint]:
    body: dict[str, Any] = {"name": name, "base_url": base_url}
    if api_key is not None:
        body["api_key"] = api_key
    return _post("/v1/model-endpoints", _model(r.ModelEndpoint), body, idempotency_key)


def list_model_endpoints() -> Call[list[r.ModelEndpoint]]:
    return Call("GET", "/v1/model-endpoints", _list(r.ModelEndpoint))


def delete_model_endpoint(name: str) -> Call[None]:
    return Call("DELETE", f"/v1/model-endpoints/{_seg(name)}", _nothing, gone_is_done=True)


# ---- knowledge ---------------------------------------------------------------------------


def _knowledge(agent_id: str) -> str:
    return f"/v1/agents/{_seg(agent_id)}/knowledge"


def add_knowledge_document(
    agent_id: str,
    material_id: str | None,
    text: str | None,
    title: str | None,
    media_type: str | None,
    timeout: float | None,
    idempotency_key: str | None,
) -> Call[r.KnowledgeDocumentWrite]:
    """Index a material or inline text. Embedding a long document takes a while, so the call
    has its own timeout; it carries an Idempotency-Key, so a resend is safe."""
    if (material_id is None) == (text is None):
        raise ValueError("give exactly one of material_id and text")
    body: dict[str, Any]
    if material_id is not None:
        body = {"material_id": material_id}
    else:
        if title is None:
            raise ValueError("inline text needs a title")
        body = {"text": text, "media_type": media_type or "text/markdown"}
    if title is not None:
        body["title"] = title
    return Call(
        "POST",
        f"{_knowledge(agent_id)}/documents",
        _model(r.KnowledgeDocumentWrite),
        json=body,
        idempotency_key=_key(idempotency_key),
        final_codes=MODEL_FAILURE_CODES,
        timeout=timeout,
    )


def list_knowledge_documents(
    agent_id: str, limit: int | None, cursor: str | None
) -> Call[r.Page[r.KnowledgeDocument]]:
    return Call(
        "GET",
        f"{_knowledge(agent_id)}/documents",
        _page(r.KnowledgeDocument),
        params=_list_params(limit, cursor),
    )


def get_knowledge_document(agent_id: str, document_id: str) -> Call[r.KnowledgeDocument]:
    return Call(
        "GET", f"{_knowledge(agent_id)}/documents/{_seg(document_id)}", _model(r.KnowledgeDocument)
    )


def delete_knowledge_document(agent_id: str, document_id: str) -> Call[None]:
    return Call(
        "DELETE",
        f"{_knowledge(agent_id)}/documents/{_seg(document_id)}",
        _nothing,
        gone_is_done=True,
    )


def index_version_knowledge(
    agent_id: str, number: int, timeout: float | None, idempotency_key: str | None
) -> Call[r.KnowledgeIndexReport]:
    return Call(
        "POST",
        f"/v1/agents/{_seg(agent_id)}/versions/{number}/knowledge/index",
        _model(r.KnowledgeIndexReport),
        idempotency_key=_key(idempotency_key),
        final_codes=MODEL_FAILURE_CODES,
        timeout=timeout,
    )


def search_knowledge(
    agent_id: str, query: str, k: int, mode: r.KnowledgeMode, idempotency_key: str | None
) -> Call[r.KnowledgeSearchResult]:
    body = {"query": query, "k": k, "mode": mode}
    return _post(
        f"{_knowledge(agent_id)}/search", _model(r.KnowledgeSearchResult), body, idempotency_key
    )
