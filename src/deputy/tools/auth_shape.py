"""What credentials an OpenAPI document asks for, so the platform can tell a user which
`AuthConfig` to provide: derived from `components.securitySchemes` and the `security`
requirements of the document and its operations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin

from deputy.tools.auth import ApiKeyAuth, AuthConfig, AuthType, NoAuth

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True)
class AuthOption:
    """One security scheme of an OpenAPI document, translated to the `AuthConfig` that serves it.

    `type` is None when Deputy cannot serve the scheme (HTTP basic, cookie API keys, OAuth2
    without a client-credentials flow, OpenID Connect); `reason` then says why."""

    scheme: str
    type: AuthType | None
    description: str = ""
    location: Literal["header", "query"] | None = None
    name: str | None = None
    token_url: str | None = None
    scopes: tuple[str, ...] = ()
    reason: str | None = None

    def accepts(self, config: AuthConfig | None) -> bool:
        """Whether `config` is the kind of credential this scheme needs (location and name too,
        for an API key)."""
        if config is None or self.type is None or config.type != self.type:
            return False
        if isinstance(config, ApiKeyAuth):
            return config.location == self.location and (
                self.name is None or config.name.lower() == self.name.lower()
            )
        return True


@dataclass(frozen=True)
class AuthShape:
    """Which credentials an OpenAPI document asks for."""

    options: tuple[AuthOption, ...]
    """The schemes operations require (or, when no operation names any, every declared one)."""
    required: bool
    """Whether some operation can only be called with credentials."""

    @property
    def supported(self) -> tuple[AuthOption, ...]:
        return tuple(option for option in self.options if option.type is not None)

    def accepts(self, config: AuthConfig | None) -> bool:
        if not self.required and (config is None or isinstance(config, NoAuth)):
            return True
        return any(option.accepts(config) for option in self.options)


def auth_shape(document: Any, base_url: str | None = None) -> AuthShape:
    """The auth shape of a (parsed) OpenAPI 3 document, from `components.securitySchemes` and the
    `security` requirements of the document and its operations. A relative OAuth2 `tokenUrl` is
    resolved against `base_url` when given."""
    if not isinstance(document, Mapping):
        return AuthShape(options=(), required=False)
    components = document.get("components")
    declared = components.get("securitySchemes") if isinstance(components, Mapping) else None
    schemes: Mapping[str, Any] = declared if isinstance(declared, Mapping) else {}
    root_security = document.get("security")
    paths = document.get("paths")
    used: list[str] = []
    required = False
    for item in paths.values() if isinstance(paths, Mapping) else ():
        for method in _METHODS:
            operation = item.get(method) if isinstance(item, Mapping) else None
            if not isinstance(operation, Mapping):
                continue
            security = operation.get("security", root_security)
            alternatives = security if isinstance(security, list) else []
            if alternatives and all(isinstance(a, Mapping) and a for a in alternatives):
                required = True  # no empty alternative: credentials are needed
            for alternative in alternatives:
                for name in alternative if isinstance(alternative, Mapping) else ():
                    if name not in used:
                        used.append(name)
    chosen = used or list(schemes)
    return AuthShape(
        options=tuple(_option(name, schemes.get(name), base_url) for name in chosen),
        required=required,
    )


def _option(name: str, scheme: Any, base_url: str | None) -> AuthOption:
    if not isinstance(scheme, Mapping):
        return AuthOption(name, None, reason=f"security scheme {name!r} is not declared")
    description = str(scheme.get("description") or "")
    kind = scheme.get("type")
    if kind == "apiKey":
        location = scheme.get("in")
        if location in ("header", "query"):
            return AuthOption(name, "api_key", description, location, str(scheme.get("name")))
        return AuthOption(name, None, description, reason=f"API keys in {location} unsupported")
    if kind == "http":
        if str(scheme.get("scheme", "")).lower() == "bearer":
            return AuthOption(name, "bearer", description)
        return AuthOption(
            name, None, description, reason=f"HTTP {scheme.get('scheme')} auth is not supported"
        )
    if kind == "oauth2":
        flows = scheme.get("flows")
        flow = flows.get("clientCredentials") if isinstance(flows, Mapping) else None
        if isinstance(flow, Mapping) and flow.get("tokenUrl"):
            scopes = flow.get("scopes")
            return AuthOption(
                name,
                "oauth2_client_credentials",
                description,
                token_url=urljoin(base_url, str(flow["tokenUrl"]))
                if base_url
                else str(flow["tokenUrl"]),
                scopes=tuple(scopes) if isinstance(scopes, Mapping) else (),
            )
        return AuthOption(
            name, None, description, reason="only the OAuth2 client-credentials flow is supported"
        )
    return AuthOption(name, None, description, reason=f"{kind} security is not supported")
