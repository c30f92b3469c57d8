"""How a tool source is stored and turned back into a client.

A `tool_sources` row keeps non-secret settings in `config` (JSON) and every credential in
`credentials_encrypted`: the `AuthConfig`, an MCP stdio server's `secret_env`, an MCP HTTP
server's headers, as one JSON object encrypted with the platform's SecretBox. Nothing here logs
or returns a secret value; validation messages never echo the input."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from deputy.config import Settings
from deputy.domain.errors import PermissionDenied, Unavailable, ValidationFailed
from deputy.store.secrets import SecretBox, SecretDecryptionFailed
from deputy.tools.auth import AuthConfig, NoAuth, parse_auth_config, reveal_secrets
from deputy.tools.auth_shape import auth_shape
from deputy.tools.mcp import MCPHTTPServer, MCPServerConfig, MCPStdioServer
from deputy.tools.openapi import OpenAPIDocument, parse_openapi

_mcp_adapter: TypeAdapter[MCPStdioServer | MCPHTTPServer] = TypeAdapter(MCPServerConfig)

FORBIDDEN_ENV_PREFIXES = ("LD_", "DYLD_", "PYTHON", "NODE_OPTIONS", "BASH_ENV", "ENV", "PERL5")
"""Environment variables that change which code an allowed command loads: never settable."""
FORBIDDEN_ENV = frozenset({"PATH", "HOME", "SHELL", "IFS"})


def problems(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors without the offending input (it may be a secret)."""
    return [
        {"loc": ".".join(str(part) for part in err["loc"]), "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def parse_auth(raw: dict[str, Any] | None) -> AuthConfig | None:
    if raw is None:
        return None
    try:
        return parse_auth_config(raw)
    except ValidationError as exc:
        raise ValidationFailed(
            "the credentials (`auth`) are not valid", details={"errors": problems(exc)}
        ) from None


@dataclass(frozen=True)
class SourceSecrets:
    """Everything secret about one source (decrypted; never log it)."""

    auth: dict[str, Any] | None = None
    secret_env: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.auth is None and not self.secret_env and not self.headers

    def auth_config(self) -> AuthConfig | None:
        return parse_auth(self.auth)

    def values(self) -> tuple[str, ...]:
        """Every secret value, for redaction."""
        config = self.auth_config()
        found = list(config.secret_values()) if config else []
        return tuple(found + list(self.secret_env.values()) + list(self.headers.values()))

    def encrypt(self, box: SecretBox) -> str | None:
        if self.empty:
            return None
        payload = {"auth": self.auth, "secret_env": self.secret_env, "headers": self.headers}
        return box.encrypt(json.dumps(payload, sort_keys=True))

    @classmethod
    def decrypt(cls, box: SecretBox, stored: str | None, source: str) -> SourceSecrets:
        if stored is None:
            return cls()
        try:
            payload = json.loads(box.decrypt(stored))
        except SecretDecryptionFailed as exc:
            raise Unavailable(
                f"the credentials of tool source {source!r} cannot be decrypted: was "
                "DEPUTY_SECRET_KEY changed?"
            ) from exc
        return cls(
            auth=payload.get("auth"),
            secret_env=dict(payload.get("secret_env") or {}),
            headers=dict(payload.get("headers") or {}),
        )


def auth_payload(config: AuthConfig | None) -> dict[str, Any] | None:
    if config is None or isinstance(config, NoAuth):
        return None
    return reveal_secrets(config)


def auth_type(secrets: SourceSecrets) -> str:
    config = secrets.auth_config()
    return config.type if config is not None else "none"


# ---- OpenAPI -----------------------------------------------------------------------------------


def openapi_document(raw: Any) -> OpenAPIDocument:
    if not isinstance(raw, dict):
        raise ValidationFailed("the OpenAPI document must be a JSON/YAML object")
    return parse_openapi(raw)


def openapi_view(document: OpenAPIDocument) -> dict[str, Any]:
    shape = auth_shape(document.source)
    return {
        "title": document.title,
        "version": document.version,
        "openapi": document.openapi_version,
        "servers": list(document.server_urls),
        "operation_count": len(document.operations),
        "skipped_operations": len(document.skipped),
        "auth_required": shape.required,
        "auth_options": [
            {"scheme": o.scheme, "type": o.type, "location": o.location, "name": o.name}
            for o in shape.options
        ],
    }


# ---- MCP ---------------------------------------------------------------------------------------


def check_stdio_command(server: MCPStdioServer, settings: Settings) -> None:
    """An MCP stdio server runs a command on the Deputy host: only the operator's may run."""
    if server.command not in settings.mcp_stdio_commands:
        raise PermissionDenied(
            f"MCP stdio servers run a command on the Deputy host; {server.command!r} is not one "
            "the operator allows (DEPUTY_MCP_STDIO_COMMANDS). Ask the operator to add it, or "
            "connect to the server over HTTP instead.",
            details={"command": server.command, "setting": "DEPUTY_MCP_STDIO_COMMANDS"},
        )
    for name in (*server.env, *server.secret_env):
        upper = name.upper()
        if upper in FORBIDDEN_ENV or upper.startswith(FORBIDDEN_ENV_PREFIXES):
            raise PermissionDenied(
                f"the environment variable {name!r} may not be set for an MCP stdio server: "
                "it changes what the command runs",
                details={"variable": name},
            )


def parse_mcp(
    raw: dict[str, Any], auth: AuthConfig | None, settings: Settings
) -> tuple[dict[str, Any], SourceSecrets]:
    """Validate an MCP server configuration; returns its non-secret config and its secrets."""
    raw = dict(raw)
    if "auth" in raw:
        raise ValidationFailed("give an MCP server's credentials as the source's `auth`")
    try:
        server = _mcp_adapter.validate_python(raw)
    except ValidationError as exc:
        raise ValidationFailed(
            "the MCP server configuration (`mcp`) is not valid", details={"errors": problems(exc)}
        ) from None
    if isinstance(server, MCPStdioServer):
        if auth is not None and not isinstance(auth, NoAuth):
            raise ValidationFailed("a stdio MCP server takes secrets as `secret_env`, not `auth`")
        check_stdio_command(server, settings)
        config = {
            "type": "stdio",
            "command": server.command,
            "args": list(server.args),
            "env": dict(server.env),
            "cwd": server.cwd,
            "secret_env_names": sorted(server.secret_env),
        }
        secret_env = {k: v.get_secret_value() for k, v in server.secret_env.items()}
        return config, SourceSecrets(auth=auth_payload(auth), secret_env=secret_env)
    config = {"type": "http", "url": server.url, "header_names": sorted(server.headers)}
    return config, SourceSecrets(auth=auth_payload(auth), headers=dict(server.headers))


def mcp_server(
    config: dict[str, Any], secrets: SourceSecrets, settings: Settings
) -> MCPStdioServer | MCPHTTPServer:
    """The server configuration with its secrets, to connect (the allowlist is checked again:
    the operator may have withdrawn a command since it was registered)."""
    if config["type"] == "stdio":
        server = MCPStdioServer.model_validate(
            {
                "command": config["command"],
                "args": config.get("args", []),
                "env": config.get("env", {}),
                "cwd": config.get("cwd"),
                "secret_env": secrets.secret_env,
            }
        )
        check_stdio_command(server, settings)
        return server
    return MCPHTTPServer.model_validate(
        {"url": config["url"], "headers": secrets.headers, "auth": secrets.auth}
    )
