"""Credentials for tool sources: what a workspace configures (`AuthConfig`), how it signs an
outgoing request (`Authenticator`). What an OpenAPI document asks for is in
`deputy.tools.auth_shape`.

Secret values are `SecretStr`: they never appear in a repr, a log line or a `model_dump`; the
store encrypts them at rest (`reveal_secrets` gives it the plain values to encrypt)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter

from deputy.tools.base import ToolTransportError
from deputy.tools.redaction import Redactor


class _AuthModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def secret_values(self) -> tuple[str, ...]:
        """The plain secret values this configuration holds, for redaction."""
        return tuple(
            value.get_secret_value()
            for value in self.__dict__.values()
            if isinstance(value, SecretStr) and value.get_secret_value()
        )

    def sensitive_names(self) -> tuple[str, ...]:
        """Header or query parameter names that carry a credential under this configuration."""
        return ()


class NoAuth(_AuthModel):
    type: Literal["none"] = "none"


class ApiKeyAuth(_AuthModel):
    type: Literal["api_key"] = "api_key"
    location: Literal["header", "query"] = "header"
    name: str = Field(default="X-API-Key", min_length=1, max_length=200)
    value: SecretStr

    def sensitive_names(self) -> tuple[str, ...]:
        return (self.name,)


class BearerAuth(_AuthModel):
    type: Literal["bearer"] = "bearer"
    token: SecretStr


class OAuth2ClientCredentials(_AuthModel):
    type: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    token_url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")
    client_id: str = Field(min_length=1, max_length=500)
    client_secret: SecretStr
    scopes: list[str] = Field(default_factory=list)
    audience: str | None = None
    client_authentication: Literal["basic", "body"] = "basic"
    """How the client credentials reach the token endpoint: HTTP Basic (`client_secret_basic`,
    the OAuth 2.0 default) or form fields (`client_secret_post`)."""


AuthConfig = Annotated[
    NoAuth | ApiKeyAuth | BearerAuth | OAuth2ClientCredentials, Field(discriminator="type")
]
AuthType = Literal["none", "api_key", "bearer", "oauth2_client_credentials"]

auth_config_adapter: TypeAdapter[AuthConfig] = TypeAdapter(AuthConfig)


def parse_auth_config(data: Any) -> AuthConfig:
    """An `AuthConfig` from JSON-like data (raises pydantic's ValidationError)."""
    return auth_config_adapter.validate_python(data)


def reveal_secrets(model: BaseModel) -> dict[str, Any]:
    """`model` as plain JSON data with its `SecretStr` values revealed: what the store encrypts
    before it writes a tool source's credentials. Never log the result."""

    def reveal(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, BaseModel):
            return {name: reveal(item) for name, item in value.__dict__.items()}
        if isinstance(value, dict):
            return {key: reveal(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [reveal(item) for item in value]
        return value

    revealed: dict[str, Any] = reveal(model)
    return revealed


class OAuth2TokenError(ToolTransportError):
    """The token endpoint did not issue a token. The tool request itself never left, so it is
    never `maybe_delivered`; it is retryable when the token endpoint failed transiently."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message, retryable=retryable, maybe_delivered=False)


@dataclass(frozen=True)
class Credentials:
    """What to add to one outgoing request."""

    headers: dict[str, str]
    params: dict[str, str]
    token: str | None = None
    """The OAuth2 access token used, so a 401 invalidates exactly that one."""


_TOKENS_REMEMBERED = 4
"""Recently issued access tokens kept for redaction: a record made just before a refresh must
still hide the token it carried."""


class Authenticator:
    """Applies an `AuthConfig` to outgoing requests. OAuth2 access tokens are fetched once (an
    asyncio lock serialises concurrent callers), cached until shortly before `expires_in`, and
    refreshed once when the API answers 401 (`invalidate` then re-apply)."""

    def __init__(
        self,
        config: AuthConfig | None,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        token_timeout_seconds: float = 15.0,
        refresh_margin_seconds: float = 30.0,
    ) -> None:
        self.config: AuthConfig = config or NoAuth()
        self._http = http
        self._owns_http = http is None
        self._clock = clock
        self._token_timeout = token_timeout_seconds
        self._margin = refresh_margin_seconds
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires_at: float | None = None
        self._issued: deque[str] = deque(maxlen=_TOKENS_REMEMBERED)
        self.token_fetches = 0
        """How many times the token endpoint was called (observability, tests)."""

    @property
    def can_refresh(self) -> bool:
        """Whether a 401 is worth one retry with fresh credentials."""
        return isinstance(self.config, OAuth2ClientCredentials)

    def secret_values(self) -> tuple[str, ...]:
        return (*self.config.secret_values(), *self._issued)

    def redactor(self) -> Redactor:
        return Redactor.of(self.secret_values(), self.config.sensitive_names())

    async def credentials(self) -> Credentials:
        config = self.config
        if isinstance(config, ApiKeyAuth):
            value = config.value.get_secret_value()
            if config.location == "header":
                return Credentials(headers={config.name: value}, params={})
            return Credentials(headers={}, params={config.name: value})
        if isinstance(config, BearerAuth):
            return Credentials(
                headers={"Authorization": f"Bearer {config.token.get_secret_value()}"}, params={}
            )
        if isinstance(config, OAuth2ClientCredentials):
            token = await self._access_token(config)
            return Credentials(headers={"Authorization": f"Bearer {token}"}, params={}, token=token)
        return Credentials(headers={}, params={})

    async def apply(self, request: httpx.Request) -> Credentials:
        """Sign `request` in place; returns what was applied."""
        credentials = await self.credentials()
        request.headers.update(credentials.headers)
        if credentials.params:
            request.url = request.url.copy_merge_params(credentials.params)
        return credentials

    def invalidate(self, token: str | None) -> None:
        """Forget the cached access token if it is `token` (the one a 401 refused); a token that
        another caller already replaced is left alone, so concurrent 401s cause one fetch."""
        if token is not None and token == self._token:
            self._token = None
            self._expires_at = None

    def _fresh(self) -> bool:
        if self._token is None:
            return False
        return self._expires_at is None or self._clock() < self._expires_at

    async def _access_token(self, config: OAuth2ClientCredentials) -> str:
        if self._fresh():
            assert self._token is not None
            return self._token
        async with self._lock:
            if self._fresh():
                assert self._token is not None
                return self._token
            token, lifetime = await self._fetch_token(config)
            self._token = token
            self._issued.append(token)
            if lifetime is None:
                self._expires_at = None
            else:
                margin = min(self._margin, lifetime / 2)
                self._expires_at = self._clock() + lifetime - margin
            return token

    async def _fetch_token(self, config: OAuth2ClientCredentials) -> tuple[str, float | None]:
        secret = config.client_secret.get_secret_value()
        form: dict[str, str] = {"grant_type": "client_credentials"}
        if config.scopes:
            form["scope"] = " ".join(config.scopes)
        if config.audience:
            form["audience"] = config.audience
        basic: tuple[str, str] | None = None
        if config.client_authentication == "basic":
            basic = (config.client_id, secret)
        else:
            form["client_id"] = config.client_id
            form["client_secret"] = secret
        if self._http is None:
            self._http = httpx.AsyncClient(follow_redirects=False)
        self.token_fetches += 1
        redactor = Redactor.of([secret])
        try:
            response = await self._http.post(
                config.token_url,
                data=form,
                auth=basic if basic is not None else httpx.USE_CLIENT_DEFAULT,
                headers={"Accept": "application/json"},
                timeout=self._token_timeout,
            )
        except httpx.HTTPError as exc:
            raise OAuth2TokenError(
                f"OAuth2 token request to {config.token_url} failed: "
                f"{redactor.text(str(exc)) or type(exc).__name__}",
                retryable=True,
            ) from None
        if response.status_code != 200:
            raise OAuth2TokenError(
                f"OAuth2 token endpoint {config.token_url} answered {response.status_code}: "
                f"{redactor.text(response.text[:300])}",
                retryable=response.status_code >= 500 or response.status_code == 429,
            )
        return _parse_token_response(response, config.token_url)

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None


def _parse_token_response(response: httpx.Response, token_url: str) -> tuple[str, float | None]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise OAuth2TokenError(
            f"OAuth2 token endpoint {token_url} returned no access_token", retryable=False
        )
    token_type = body.get("token_type", "bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise OAuth2TokenError(
            f"OAuth2 token endpoint {token_url} issued a {token_type!r} token; only bearer "
            "tokens are supported",
            retryable=False,
        )
    expires_in = body.get("expires_in")
    lifetime: float | None = None
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        lifetime = max(float(expires_in), 0.0)
    elif isinstance(expires_in, str) and expires_in.isdigit():
        lifetime = float(expires_in)
    token: str = body["access_token"]
    return token, lifetime
