"""Tool source credentials: the AuthConfig union, the Authenticator (OAuth2 token caching,
refresh, concurrency) against an in-memory token endpoint, and the auth shape of OpenAPI docs."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import ValidationError

from deputy.tools.auth import (
    ApiKeyAuth,
    Authenticator,
    BearerAuth,
    NoAuth,
    OAuth2ClientCredentials,
    OAuth2TokenError,
    parse_auth_config,
    reveal_secrets,
)
from deputy.tools.auth_shape import auth_shape

TOKEN_URL = "https://auth.example.test/oauth/token"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TokenEndpoint:
    """An OAuth2 token endpoint on an httpx MockTransport."""

    def __init__(self, *, expires_in: Any = 3600, status: int = 200, delay: float = 0.0):
        self.expires_in = expires_in
        self.status = status
        self.delay = delay
        self.requests: list[httpx.Request] = []
        self.issued = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return httpx.Response(self.status, json={"error": "invalid_client"})
        self.issued += 1
        body: dict[str, Any] = {"access_token": f"token-{self.issued}", "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return httpx.Response(200, json=body)


def oauth(**overrides: Any) -> OAuth2ClientCredentials:
    fields: dict[str, Any] = {
        "token_url": TOKEN_URL,
        "client_id": "deputy-client",
        "client_secret": "very-secret-value",
        "scopes": ["orders:read", "refunds:write"],
    }
    fields.update(overrides)
    return OAuth2ClientCredentials(**fields)


def authenticator(
    config: Any, endpoint: Callable[..., Any], clock: FakeClock | None = None
) -> Authenticator:
    http = httpx.AsyncClient(transport=httpx.MockTransport(endpoint))
    return Authenticator(config, http=http, clock=clock or FakeClock())


async def close(auth: Authenticator) -> None:
    assert auth._http is not None
    await auth._http.aclose()


def test_config_is_a_discriminated_union() -> None:
    assert isinstance(parse_auth_config({"type": "none"}), NoAuth)
    key = parse_auth_config({"type": "api_key", "location": "query", "name": "k", "value": "v1"})
    assert isinstance(key, ApiKeyAuth) and key.location == "query"
    assert isinstance(parse_auth_config({"type": "bearer", "token": "t"}), BearerAuth)
    flow = parse_auth_config(
        {
            "type": "oauth2_client_credentials",
            "token_url": TOKEN_URL,
            "client_id": "c",
            "client_secret": "s",
            "client_authentication": "body",
        }
    )
    assert isinstance(flow, OAuth2ClientCredentials) and flow.client_authentication == "body"
    with pytest.raises(ValidationError):
        parse_auth_config({"type": "basic", "user": "u"})
    with pytest.raises(ValidationError):
        parse_auth_config({"type": "api_key", "location": "cookie", "name": "k", "value": "v"})
    with pytest.raises(ValidationError):
        parse_auth_config({"type": "bearer", "token": "t", "extra": 1})


def test_secrets_never_show_but_can_be_revealed_for_encryption() -> None:
    config = oauth()
    assert "very-secret-value" not in repr(config)
    assert "very-secret-value" not in config.model_dump_json()
    assert config.secret_values() == ("very-secret-value",)
    revealed = reveal_secrets(config)
    assert revealed["client_secret"] == "very-secret-value"
    assert parse_auth_config(revealed) == config
    assert ApiKeyAuth(name="X-Key", value="abc").sensitive_names() == ("X-Key",)


def test_api_key_and_bearer_are_applied_to_requests() -> None:
    async def scenario() -> None:
        header = Authenticator(ApiKeyAuth(name="X-Shop-Key", value="k1"))
        request = httpx.Request("GET", "https://api.test/orders?page=2")
        await header.apply(request)
        assert request.headers["X-Shop-Key"] == "k1"

        query = Authenticator(ApiKeyAuth(location="query", name="api_key", value="k 2"))
        request = httpx.Request("GET", "https://api.test/orders?page=2")
        await query.apply(request)
        assert request.url.params["api_key"] == "k 2" and request.url.params["page"] == "2"
        assert "k 2" in query.secret_values()

        bearer = Authenticator(BearerAuth(token="tok"))
        request = httpx.Request("GET", "https://api.test/")
        await bearer.apply(request)
        assert request.headers["Authorization"] == "Bearer tok"
        assert not bearer.can_refresh

        none = Authenticator(None)
        request = httpx.Request("GET", "https://api.test/")
        assert (await none.apply(request)).headers == {}
        assert "authorization" not in request.headers

    asyncio.run(scenario())


def test_oauth2_basic_credentials_scopes_and_audience() -> None:
    endpoint = TokenEndpoint()

    async def scenario() -> None:
        auth = authenticator(oauth(audience="https://api.test"), endpoint)
        request = httpx.Request("GET", "https://api.test/orders")
        credentials = await auth.apply(request)
        assert request.headers["Authorization"] == "Bearer token-1"
        assert credentials.token == "token-1"
        await close(auth)

    asyncio.run(scenario())
    sent = endpoint.requests[0]
    form = parse_qs(sent.content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "scope": ["orders:read refunds:write"],
        "audience": ["https://api.test"],
    }
    expected = base64.b64encode(b"deputy-client:very-secret-value").decode()
    assert sent.headers["Authorization"] == f"Basic {expected}"


def test_oauth2_credentials_in_the_form_body() -> None:
    endpoint = TokenEndpoint()

    async def scenario() -> None:
        auth = authenticator(oauth(client_authentication="body", scopes=[]), endpoint)
        await auth.credentials()
        await close(auth)

    asyncio.run(scenario())
    sent = endpoint.requests[0]
    assert "authorization" not in sent.headers
    assert parse_qs(sent.content.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["deputy-client"],
        "client_secret": ["very-secret-value"],
    }


def test_oauth2_token_is_cached_until_shortly_before_it_expires() -> None:
    endpoint = TokenEndpoint(expires_in=300)
    clock = FakeClock()

    async def scenario() -> list[str | None]:
        auth = authenticator(oauth(), endpoint, clock)
        tokens = [(await auth.credentials()).token]
        clock.now += 250  # 300 s lifetime, refreshed 30 s early: still fresh at +250
        tokens.append((await auth.credentials()).token)
        clock.now += 21  # +271: within the margin
        tokens.append((await auth.credentials()).token)
        assert set(auth.secret_values()) >= {"token-1", "token-2", "very-secret-value"}
        await close(auth)
        return tokens

    assert asyncio.run(scenario()) == ["token-1", "token-1", "token-2"]
    assert endpoint.issued == 2


def test_short_lived_tokens_use_half_their_lifetime_as_margin() -> None:
    endpoint = TokenEndpoint(expires_in=10)
    clock = FakeClock()

    async def scenario() -> list[str | None]:
        auth = authenticator(oauth(), endpoint, clock)
        first = (await auth.credentials()).token
        clock.now += 4.9
        second = (await auth.credentials()).token
        clock.now += 0.2
        third = (await auth.credentials()).token
        await close(auth)
        return [first, second, third]

    assert asyncio.run(scenario()) == ["token-1", "token-1", "token-2"]


def test_a_token_without_expires_in_is_kept_until_a_401() -> None:
    endpoint = TokenEndpoint(expires_in=None)
    clock = FakeClock()

    async def scenario() -> list[str | None]:
        auth = authenticator(oauth(), endpoint, clock)
        first = await auth.credentials()
        clock.now += 10**6
        second = await auth.credentials()
        auth.invalidate("some-other-token")  # a stale 401 leaves the current token alone
        third = await auth.credentials()
        auth.invalidate(third.token)
        fourth = await auth.credentials()
        await close(auth)
        return [first.token, second.token, third.token, fourth.token]

    assert asyncio.run(scenario()) == ["token-1", "token-1", "token-1", "token-2"]


def test_concurrent_callers_share_one_token_fetch() -> None:
    endpoint = TokenEndpoint(delay=0.05)

    async def scenario() -> set[str | None]:
        auth = authenticator(oauth(), endpoint)
        results = await asyncio.gather(*(auth.credentials() for _ in range(10)))
        assert auth.token_fetches == 1
        await close(auth)
        return {c.token for c in results}

    assert asyncio.run(scenario()) == {"token-1"}
    assert len(endpoint.requests) == 1


@pytest.mark.parametrize(("status", "retryable"), [(401, False), (400, False), (503, True)])
def test_token_endpoint_refusals(status: int, retryable: bool) -> None:
    endpoint = TokenEndpoint(status=status)

    async def scenario() -> OAuth2TokenError:
        auth = authenticator(oauth(), endpoint)
        with pytest.raises(OAuth2TokenError) as caught:
            await auth.credentials()
        await close(auth)
        return caught.value

    error = asyncio.run(scenario())
    assert error.retryable is retryable
    assert error.maybe_delivered is False
    assert str(status) in str(error) and "very-secret-value" not in str(error)


def test_token_endpoint_unreachable_is_retryable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async def scenario() -> OAuth2TokenError:
        auth = authenticator(oauth(), refuse)
        with pytest.raises(OAuth2TokenError) as caught:
            await auth.credentials()
        await close(auth)
        return caught.value

    error = asyncio.run(scenario())
    assert error.retryable and not error.maybe_delivered


@pytest.mark.parametrize(
    "body",
    [{"token_type": "bearer"}, {"access_token": "t", "token_type": "mac"}, "not json"],
)
def test_unusable_token_responses(body: Any) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(200, text=body)
        return httpx.Response(200, json=body)

    async def scenario() -> None:
        auth = authenticator(oauth(), respond)
        with pytest.raises(OAuth2TokenError) as caught:
            await auth.credentials()
        assert not caught.value.retryable
        await close(auth)

    asyncio.run(scenario())


def test_redactor_hides_configured_key_names_and_issued_tokens() -> None:
    endpoint = TokenEndpoint()

    async def scenario() -> None:
        auth = authenticator(oauth(), endpoint)
        await auth.credentials()
        redactor = auth.redactor()
        assert redactor.text("Bearer token-1 and very-secret-value") == (
            "Bearer [redacted] and [redacted]"
        )
        await close(auth)

    asyncio.run(scenario())
    key = Authenticator(ApiKeyAuth(location="query", name="shop_key", value="abcd-1234"))
    assert (
        key.redactor().url("https://x.test/a?shop_key=zzz")
        == "https://x.test/a?shop_key=[redacted]"
    )


SHAPE_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "security": [{"key": []}],
    "paths": {
        "/orders": {
            "get": {"responses": {}},
            "post": {"security": [{"oauth": ["orders:write"]}], "responses": {}},
        },
        "/health": {"get": {"security": [], "responses": {}}},
    },
    "components": {
        "securitySchemes": {
            "key": {"type": "apiKey", "in": "header", "name": "X-Shop-Key"},
            "oauth": {
                "type": "oauth2",
                "flows": {
                    "clientCredentials": {
                        "tokenUrl": TOKEN_URL,
                        "scopes": {"orders:write": "w", "orders:read": "r"},
                    }
                },
            },
            "basic": {"type": "http", "scheme": "basic"},
            "unused_bearer": {"type": "http", "scheme": "bearer"},
        }
    },
}


def test_auth_shape_lists_the_schemes_operations_require() -> None:
    shape = auth_shape(SHAPE_DOCUMENT)
    assert shape.required
    by_name = {option.scheme: option for option in shape.options}
    assert set(by_name) == {"key", "oauth"}
    assert by_name["key"].type == "api_key"
    assert (by_name["key"].location, by_name["key"].name) == ("header", "X-Shop-Key")
    assert by_name["oauth"].type == "oauth2_client_credentials"
    assert by_name["oauth"].token_url == TOKEN_URL
    assert by_name["oauth"].scopes == ("orders:write", "orders:read")
    assert shape.accepts(ApiKeyAuth(name="x-shop-key", value="v"))
    assert not shape.accepts(ApiKeyAuth(name="X-Other", value="v"))
    assert not shape.accepts(ApiKeyAuth(location="query", name="X-Shop-Key", value="v"))
    assert shape.accepts(oauth())
    assert not shape.accepts(BearerAuth(token="t"))
    assert not shape.accepts(None)


def test_auth_shape_of_declared_but_unused_and_unsupported_schemes() -> None:
    document = {**SHAPE_DOCUMENT, "security": [], "paths": {"/x": {"get": {"responses": {}}}}}
    shape = auth_shape(document)
    assert not shape.required
    assert shape.accepts(None) and shape.accepts(NoAuth())
    by_name = {option.scheme: option for option in shape.options}
    assert set(by_name) == {"key", "oauth", "basic", "unused_bearer"}
    assert by_name["basic"].type is None and by_name["basic"].reason
    assert by_name["unused_bearer"].type == "bearer"
    assert {o.scheme for o in shape.supported} == {"key", "oauth", "unused_bearer"}


def test_auth_shape_with_an_optional_alternative_is_not_required() -> None:
    document = {
        "openapi": "3.0.3",
        "paths": {"/x": {"get": {"security": [{}, {"b": []}], "responses": {}}}},
        "components": {"securitySchemes": {"b": {"type": "http", "scheme": "bearer"}}},
    }
    shape = auth_shape(document)
    assert not shape.required
    assert [o.type for o in shape.options] == ["bearer"]
