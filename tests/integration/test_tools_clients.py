"""The tool source clients against real servers on 127.0.0.1: a FastAPI app under uvicorn
(API key, bearer, OAuth2 client credentials with expiring tokens, idempotency keys, a slow
endpoint, a 500) imported through its own OpenAPI document, and webhooks on the same app. The MCP
client's tests are in test_tools_mcp.py."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import jsonschema_rs
import pytest

from deputy.tools.auth import ApiKeyAuth, BearerAuth, OAuth2ClientCredentials, OAuth2TokenError
from deputy.tools.auth_shape import auth_shape
from deputy.tools.base import Invocation, InvocationResult, ToolTransportError
from deputy.tools.openapi import OpenAPIClient, OpenAPIDocument, parse_openapi
from deputy.tools.webhook import WebhookClient
from tests.integration.tools_fixture_api import (
    API_KEY,
    BEARER,
    CLIENT_ID,
    CLIENT_SECRET,
    ApiState,
    build_app,
    free_port,
    serve,
)

pytestmark = pytest.mark.integration

T = TypeVar("T")


@dataclass
class Api:
    url: str
    state: ApiState
    document: OpenAPIDocument
    raw: dict[str, Any]


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    state = ApiState()
    app = build_app(state)
    raw = app.openapi()
    raw["x-idempotency"] = True
    with serve(app) as url:
        yield Api(url, state, parse_openapi(raw), raw)


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(scenario())


def invoke(api: Api, auth: Any, invocation: Invocation) -> InvocationResult:
    async def scenario() -> InvocationResult:
        client = OpenAPIClient(api.document, api.url, auth)
        try:
            return await client.invoke(invocation)
        finally:
            await client.aclose()

    return run(scenario)


def oauth(api: Api, **overrides: Any) -> OAuth2ClientCredentials:
    fields: dict[str, Any] = {
        "token_url": f"{api.url}/oauth/token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scopes": ["orders"],
    }
    fields.update(overrides)
    return OAuth2ClientCredentials(**fields)


def secrets_absent(result: InvocationResult, *secrets: str) -> None:
    recorded = json.dumps([result.output, result.request, result.response])
    for secret in secrets:
        assert secret not in recorded


# -- OpenAPI ---------------------------------------------------------------------------------


def test_the_generated_document_imports_with_valid_schemas(api: Api) -> None:
    tools = {tool.operation: tool for tool in api.document.tools()}
    assert {"get_order", "create_refund", "search_orders", "slow", "boom"} <= set(tools)
    assert tools["get_order"].effect == "read"
    assert tools["create_refund"].effect == "irreversible"  # from x-effect
    assert tools["create_refund"].input_schema["required"] == ["order_id", "amount"]
    for tool in tools.values():
        jsonschema_rs.meta.validate(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", **tool.input_schema}
        )
    shape = auth_shape(api.raw, base_url=api.url)
    kinds = {option.type for option in shape.options}
    assert kinds == {"api_key", "bearer", "oauth2_client_credentials"}
    assert shape.accepts(oauth(api))
    assert next(o for o in shape.options if o.token_url).token_url == f"{api.url}/oauth/token"


def test_api_key_in_a_header(api: Api) -> None:
    result = invoke(
        api,
        ApiKeyAuth(name="X-API-Key", value=API_KEY),
        Invocation("get_order", {"order_id": "A1"}, 5),
    )
    assert result.ok and result.status == 200
    assert result.output == {"order_id": "A1", "status": "shipped", "total": 42.5}
    assert result.request["headers"]["x-api-key"] == "[redacted]"
    assert result.request["url"] == f"{api.url}/orders/A1"
    secrets_absent(result, API_KEY)

    refused = invoke(
        api,
        ApiKeyAuth(name="X-API-Key", value="wrong"),
        Invocation("get_order", {"order_id": "A1"}, 5),
    )
    assert not refused.ok and refused.status == 401
    assert refused.output == {"detail": "bad api key"}


def test_api_key_in_the_query(api: Api) -> None:
    auth = ApiKeyAuth(location="query", name="api_key", value=API_KEY)
    result = invoke(api, auth, Invocation("get_order_query_key", {"order_id": "B 2"}, 5))
    assert result.ok and result.output["order_id"] == "B 2"
    assert result.request["url"] == f"{api.url}/query/orders/B%202?api_key=[redacted]"
    secrets_absent(result, API_KEY)


def test_bearer_token(api: Api) -> None:
    result = invoke(
        api, BearerAuth(token=BEARER), Invocation("get_order_bearer", {"order_id": "C"}, 5)
    )
    assert result.ok
    assert result.request["headers"]["authorization"] == "[redacted]"
    secrets_absent(result, BEARER)
    missing = invoke(
        api, BearerAuth(token=BEARER), Invocation("get_order_bearer", {"order_id": "missing"}, 5)
    )
    assert not missing.ok and missing.status == 404
    assert missing.output == {"detail": "order missing not found"}


def test_oauth2_tokens_are_fetched_once_cached_and_renewed(api: Api) -> None:
    api.state.token_lifetime = 2.0  # refreshed 1 s before it expires

    async def scenario() -> list[InvocationResult]:
        client = OpenAPIClient(api.document, api.url, oauth(api))
        try:
            before = api.state.token_requests
            calls = [
                client.invoke(Invocation("get_order_oauth", {"order_id": f"O{i}"}, 5))
                for i in range(6)
            ]
            results = list(await asyncio.gather(*calls))
            assert api.state.token_requests - before == 1, "concurrent calls share one fetch"
            await asyncio.sleep(1.2)
            results.append(await client.invoke(Invocation("get_order_oauth", {"order_id": "L"}, 5)))
            assert api.state.token_requests - before == 2, "renewed before it expired"
            return results
        finally:
            await client.aclose()

    try:
        results = run(scenario)
    finally:
        api.state.token_lifetime = 3600.0
    assert all(result.ok for result in results)
    for result in results:
        secrets_absent(result, CLIENT_SECRET, *api.state.tokens)


def test_oauth2_refreshes_once_on_a_401(api: Api) -> None:
    async def scenario() -> InvocationResult:
        client = OpenAPIClient(api.document, api.url, oauth(api, client_authentication="body"))
        try:
            assert (await client.invoke(Invocation("get_order_oauth", {"order_id": "R"}, 5))).ok
            before = api.state.token_requests
            async with httpx.AsyncClient() as admin:
                assert (await admin.post(f"{api.url}/admin/revoke")).status_code == 200
            result = await client.invoke(Invocation("get_order_oauth", {"order_id": "R"}, 5))
            assert api.state.token_requests - before == 1
            return result
        finally:
            await client.aclose()

    assert run(scenario).ok


def test_oauth2_bad_client_secret(api: Api) -> None:
    with pytest.raises(OAuth2TokenError) as caught:
        invoke(
            api,
            oauth(api, client_secret="nope-nope"),
            Invocation("get_order_oauth", {"order_id": "X"}, 5),
        )
    assert not caught.value.retryable and not caught.value.maybe_delivered
    assert "401" in str(caught.value) and "nope-nope" not in str(caught.value)


def test_the_idempotency_key_reaches_the_api(api: Api) -> None:
    auth = ApiKeyAuth(name="X-API-Key", value=API_KEY)
    call = Invocation(
        "create_refund", {"order_id": "A7", "amount": 12.5, "reason": "damaged"}, 5, "idem-A7"
    )
    first, second = invoke(api, auth, call), invoke(api, auth, call)
    assert first.ok and first.status == 201
    assert first.output["idempotency_key"] == "idem-A7" and first.output["reason"] == "damaged"
    assert (first.output["times_seen"], second.output["times_seen"]) == (1, 2)
    assert first.request["body"] == {"amount": 12.5, "reason": "damaged"}
    assert first.request["headers"]["idempotency-key"] == "idem-A7"
    assert OpenAPIClient(api.document, api.url).honours_idempotency_keys  # x-idempotency: true
    no_key = invoke(api, auth, Invocation("create_refund", {"order_id": "A8", "amount": 1}, 5))
    assert no_key.ok and api.state.idempotency_keys[-1] is None


def test_arrays_in_the_query(api: Api) -> None:
    result = invoke(api, None, Invocation("search_orders", {"tags": ["a", "b c"], "limit": 3}, 5))
    assert result.output == {"tags": ["a", "b c"], "limit": 3, "status": None}
    unprocessable = invoke(api, None, Invocation("search_orders", {"tags": ["a"], "limit": "x"}, 5))
    assert not unprocessable.ok and unprocessable.status == 422


def test_a_slow_call_times_out(api: Api) -> None:
    started = time.monotonic()
    with pytest.raises(ToolTransportError) as caught:
        invoke(api, None, Invocation("slow", {"seconds": 5}, 0.5))
    assert time.monotonic() - started < 3
    assert caught.value.retryable and caught.value.maybe_delivered
    assert "timed out" in str(caught.value)


def test_a_500_is_a_retryable_transport_error(api: Api) -> None:
    with pytest.raises(ToolTransportError) as caught:
        invoke(api, None, Invocation("boom", {}, 5))
    assert caught.value.retryable and caught.value.maybe_delivered
    assert "500" in str(caught.value) and "on fire" in str(caught.value)


def test_a_refused_connection_was_never_delivered(api: Api) -> None:
    async def scenario() -> None:
        client = OpenAPIClient(api.document, f"http://127.0.0.1:{free_port()}")
        try:
            await client.invoke(Invocation("create_refund", {"order_id": "Z", "amount": 1}, 5, "k"))
        finally:
            await client.aclose()

    with pytest.raises(ToolTransportError) as caught:
        run(scenario)
    assert caught.value.retryable and not caught.value.maybe_delivered


# -- webhooks --------------------------------------------------------------------------------


def test_webhooks_fill_the_url_and_send_the_rest(api: Api) -> None:
    async def scenario() -> tuple[InvocationResult, InvocationResult, InvocationResult]:
        refund = WebhookClient(
            "POST", f"{api.url}/orders/{{order_id}}/refunds", ApiKeyAuth(value=API_KEY)
        )
        lookup = WebhookClient("GET", f"{api.url}/search", None, operation="search")
        echo = WebhookClient("POST", f"{api.url}/echo", BearerAuth(token=BEARER))
        try:
            assert [t.effect for t in await lookup.list_tools()] == ["read"]
            return (
                await refund.invoke(
                    Invocation("refund", {"order_id": "W1", "amount": 3}, 5, "wk-1")
                ),
                await lookup.invoke(
                    Invocation("search", {"tags": ["x", "y"], "status": "open"}, 5)
                ),
                await echo.invoke(Invocation("echo", {"note": "hi"}, 5)),
            )
        finally:
            for client in (refund, lookup, echo):
                await client.aclose()

    refund, lookup, echo = run(scenario)
    assert refund.ok and refund.output["order_id"] == "W1"
    assert refund.output["idempotency_key"] == "wk-1" and refund.request["body"] == {"amount": 3}
    assert lookup.output == {"tags": ["x", "y"], "limit": 10, "status": "open"}
    # The API echoes the Authorization header back: the token never reaches the model.
    assert echo.output == {"authorization": "Bearer [redacted]", "body": {"note": "hi"}}
    secrets_absent(echo, BEARER)
    secrets_absent(refund, API_KEY)


# -- the retail sample backend (examples/retail) ----------------------------------------------


def test_retail_sample_rest_api_through_its_openapi_document() -> None:
    """The retail sample's own OpenAPI document, imported and called with OAuth2 credentials."""
    retail = pytest.importorskip("examples.retail.server")
    from examples.retail.auth import AuthConfig as RetailAuth
    from examples.retail.store import RetailStore, default_db_path

    if not default_db_path().exists():
        pytest.skip(f"the tau2 retail database is not at {default_db_path()}")
    auth = RetailAuth(mode="oauth2", client_id="deputy-retail", client_secret="retail-s3cret")
    with retail.serve_rest(RetailStore(), auth) as base_url:
        raw = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
        document = parse_openapi(raw)
        tools = {tool.operation: tool for tool in document.tools()}
        assert tools["get_order_details"].effect == "read"
        assert tools["cancel_pending_order"].effect == "irreversible"
        shape = auth_shape(raw, base_url=base_url)
        [option] = shape.supported
        assert option.type == "oauth2_client_credentials" and shape.required
        assert option.token_url is not None
        credentials = OAuth2ClientCredentials(
            token_url=option.token_url, client_id="deputy-retail", client_secret="retail-s3cret"
        )
        assert shape.accepts(credentials)

        async def scenario() -> tuple[InvocationResult, InvocationResult]:
            client = OpenAPIClient(document, base_url, credentials)
            try:
                found = await client.invoke(
                    Invocation("get_order_details", {"order_id": "#W2611340"}, 10)
                )
                unknown = await client.invoke(
                    Invocation("get_order_details", {"order_id": "#W0000000"}, 10)
                )
                return found, unknown
            finally:
                await client.aclose()

        found, unknown = run(scenario)
    assert found.ok and found.output["user_id"] == "james_li_5688"
    assert found.request["headers"]["authorization"] == "[redacted]"
    assert not unknown.ok and unknown.status == 404 and "error" in unknown.output
    secrets_absent(found, "retail-s3cret")
