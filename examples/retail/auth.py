"""REST API authentication: none, API key, static bearer token or OAuth2 client credentials.

- `none`: every request passes.
- `api_key`: header `X-API-Key: <key>`.
- `bearer`: header `Authorization: Bearer <token>` with one static token.
- `oauth2`: `POST /oauth/token` with `grant_type=client_credentials` and the client id and secret
  (form fields or HTTP Basic) returns `{"access_token", "token_type": "bearer", "expires_in"}`;
  requests then carry `Authorization: Bearer <access_token>` until it expires.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import parse_qs

AuthMode = Literal["none", "api_key", "bearer", "oauth2"]
AUTH_MODES: tuple[str, ...] = get_args(AuthMode)
API_KEY_HEADER = "X-API-Key"
TOKEN_PATH = "/oauth/token"  # noqa: S105  (a URL path, not a secret)


class AuthError(Exception):
    """A refused credential: 401, or 400 for a malformed token request."""

    def __init__(self, message: str, status_code: int = 401, code: str = "unauthorized") -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code


@dataclass
class AuthConfig:
    mode: AuthMode = "none"
    api_key: str | None = None
    bearer_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    token_ttl_seconds: float = 3600.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in AUTH_MODES:
            raise ValueError(f"auth mode must be one of {', '.join(AUTH_MODES)}")
        needed = {
            "api_key": ("api_key",),
            "bearer": ("bearer_token",),
            "oauth2": ("client_id", "client_secret"),
        }.get(self.mode, ())
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ValueError(f"auth mode {self.mode!r} needs {', '.join(missing)}")
        if self.token_ttl_seconds <= 0:
            raise ValueError("token_ttl_seconds must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthConfig:
        """`RETAIL_AUTH` (mode), `RETAIL_API_KEY`, `RETAIL_BEARER_TOKEN`, `RETAIL_CLIENT_ID`,
        `RETAIL_CLIENT_SECRET`, `RETAIL_TOKEN_TTL_SECONDS`."""
        env = os.environ if environ is None else environ
        mode = env.get("RETAIL_AUTH", "none")
        if mode not in AUTH_MODES:
            raise ValueError(f"RETAIL_AUTH must be one of {', '.join(AUTH_MODES)}")
        return cls(
            mode=mode,  # type: ignore[arg-type]  # checked just above
            api_key=env.get("RETAIL_API_KEY"),
            bearer_token=env.get("RETAIL_BEARER_TOKEN"),
            client_id=env.get("RETAIL_CLIENT_ID"),
            client_secret=env.get("RETAIL_CLIENT_SECRET"),
            token_ttl_seconds=float(env.get("RETAIL_TOKEN_TTL_SECONDS", "3600")),
        )

    def security_schemes(self) -> dict[str, Any]:
        """The OpenAPI `components.securitySchemes` for the active mode (empty for `none`)."""
        if self.mode == "api_key":
            return {"apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}}
        if self.mode == "bearer":
            return {"bearerAuth": {"type": "http", "scheme": "bearer"}}
        if self.mode == "oauth2":
            flow = {"tokenUrl": TOKEN_PATH, "scopes": {}}
            return {"oauth2": {"type": "oauth2", "flows": {"clientCredentials": flow}}}
        return {}


def _same(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def _bearer(headers: Mapping[str, str]) -> str:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("missing bearer token (Authorization: Bearer <token>)")
    return token.strip()


class Authenticator:
    """Checks request headers against an `AuthConfig`, and issues OAuth2 tokens."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, headers: Mapping[str, str]) -> None:
        """Raise `AuthError` unless the headers (lower-case names) carry a valid credential."""
        mode = self.config.mode
        if mode == "api_key":
            key = headers.get(API_KEY_HEADER.lower())
            if not key:
                raise AuthError(f"missing API key ({API_KEY_HEADER} header)")
            if not _same(key, self.config.api_key):
                raise AuthError("invalid API key")
        elif mode == "bearer":
            if not _same(_bearer(headers), self.config.bearer_token):
                raise AuthError("invalid bearer token")
        elif mode == "oauth2":
            token = _bearer(headers)
            with self._lock:
                expires = self._tokens.get(token)
                if expires is not None and expires <= self.config.clock():
                    del self._tokens[token]
                    raise AuthError("access token expired")
            if expires is None:
                raise AuthError("invalid access token")

    def issue_token(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """Answer a client-credentials token request (RFC 6749 section 4.4)."""
        if self.config.mode != "oauth2":
            raise AuthError("OAuth2 is not enabled on this server", 404, "not_found")
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items() if v}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as error:
                raise AuthError("malformed Basic credentials", code="invalid_client") from error
            client_id, _, client_secret = decoded.partition(":")
        if form.get("grant_type") != "client_credentials":
            raise AuthError(
                "grant_type must be client_credentials", 400, code="unsupported_grant_type"
            )
        if not (
            client_id
            and client_secret
            and _same(client_id, self.config.client_id)
            and _same(client_secret, self.config.client_secret)
        ):
            raise AuthError("invalid client credentials", code="invalid_client")
        token = secrets.token_urlsafe(32)
        ttl = self.config.token_ttl_seconds
        with self._lock:
            now = self.config.clock()
            self._tokens = {t: e for t, e in self._tokens.items() if e > now}
            self._tokens[token] = now + ttl
        expires_in = int(ttl) if float(ttl).is_integer() else ttl
        return {"access_token": token, "token_type": "bearer", "expires_in": expires_in}
