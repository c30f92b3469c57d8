"""Parsing an OpenAPI 3.0/3.1 document into tools (the rules are in `deputy.tools.openapi`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deputy.domain.errors import NotFound, ValidationFailed
from deputy.tools.base import ToolDefinition
from deputy.tools.httpcall import IDEMPOTENCY_HEADER
from deputy.tools.openapi_operations import OpenAPIOperation, OperationBuilder, SkippedOperation
from deputy.tools.openapi_schema import RefResolver, SchemaConverter

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_VERSION = re.compile(r"^3\.(0|1)(\.\d+)?(-.+)?$")


@dataclass(frozen=True)
class OpenAPIDocument:
    openapi_version: str
    title: str
    version: str
    server_urls: tuple[str, ...]
    """The document's `servers` (a hint for the base URL; the client is given one explicitly)."""
    operations: tuple[OpenAPIOperation, ...]
    skipped: tuple[SkippedOperation, ...] = ()
    """Operations that cannot be tools (e.g. a required multipart body), with the reason."""
    honours_idempotency_keys: bool = False
    idempotency_header: str = IDEMPOTENCY_HEADER
    source: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The parsed document itself (for `deputy.tools.auth_shape.auth_shape`)."""

    def tools(self) -> list[ToolDefinition]:
        return [operation.tool for operation in self.operations]

    def operation(self, name: str) -> OpenAPIOperation:
        for operation in self.operations:
            if operation.tool.operation == name:
                return operation
        raise NotFound("operation", name)


def parse_openapi(document: Mapping[str, Any]) -> OpenAPIDocument:
    """Parse and check an OpenAPI 3.0/3.1 document. Raises `ValidationFailed` with the place and
    the reason when it is not OpenAPI 3, has no paths, or has a broken or cyclic `$ref` in an
    operation."""
    if not isinstance(document, Mapping):
        raise ValidationFailed("an OpenAPI document must be a JSON/YAML object")
    version = document.get("openapi")
    if version is None:
        if "swagger" in document:
            raise ValidationFailed(
                f"Swagger {document['swagger']} documents are not supported: convert the "
                "document to OpenAPI 3"
            )
        raise ValidationFailed("not an OpenAPI document: the 'openapi' field is missing")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ValidationFailed(
            f"unsupported OpenAPI version {version!r}: 3.0.x and 3.1.x are supported"
        )
    paths = document.get("paths")
    if not isinstance(paths, Mapping) or not paths:
        raise ValidationFailed("the document has no 'paths': it defines no operations to call")
    info = document.get("info") if isinstance(document.get("info"), Mapping) else {}
    assert isinstance(info, Mapping)
    resolver = RefResolver(document)
    builder = OperationBuilder(resolver, SchemaConverter(resolver))
    operations: list[OpenAPIOperation] = []
    skipped: list[SkippedOperation] = []
    names: set[str] = set()
    for path, raw_item in paths.items():
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValidationFailed(f"paths: {path!r} must start with '/'")
        item = resolver.follow(raw_item, f"paths.{path}")
        if not isinstance(item, Mapping):
            raise ValidationFailed(f"paths.{path}: a path item must be an object")
        for method in METHODS:
            if method not in item:
                continue
            where = f"paths.{path}.{method}"
            outcome = builder.build(path, method, item, names, where)
            if isinstance(outcome, SkippedOperation):
                skipped.append(outcome)
            else:
                operations.append(outcome)
                names.add(outcome.tool.operation)
    if not operations and not skipped:
        raise ValidationFailed("the document's paths define no operations")
    honours, header = _idempotency_hint(document.get("x-idempotency", info.get("x-idempotency")))
    servers = document.get("servers")
    return OpenAPIDocument(
        openapi_version=version,
        title=str(info.get("title") or ""),
        version=str(info.get("version") or ""),
        server_urls=tuple(
            str(server["url"])
            for server in (servers if isinstance(servers, list) else [])
            if isinstance(server, Mapping) and "url" in server
        ),
        operations=tuple(operations),
        skipped=tuple(skipped),
        honours_idempotency_keys=honours,
        idempotency_header=header,
        source=document,
    )


def _idempotency_hint(hint: Any) -> tuple[bool, str]:
    if isinstance(hint, bool):
        return hint, IDEMPOTENCY_HEADER
    if isinstance(hint, Mapping):
        header = hint.get("header", IDEMPOTENCY_HEADER)
        return hint.get("supported", True) is True, str(header)
    if hint is None:
        return False, IDEMPOTENCY_HEADER
    raise ValidationFailed(
        "x-idempotency must be true, false or {supported: bool, header: str}",
        details={"x-idempotency": repr(hint)},
    )
