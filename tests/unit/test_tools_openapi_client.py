"""The requests OpenAPIClient and WebhookClient build from a call's arguments, and how they map
what comes back (over httpx's MockTransport; the same against real servers is in
tests/integration/test_tools_clients.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from deputy.domain.errors import NotFound, ValidationFailed
from deputy.tools.auth import ApiKeyAuth
from deputy.tools.base import Invocation, InvocationResult, ToolTransportError
from deputy.tools.httpcall import HTTPCaller
from deputy.tools.openapi import OpenAPIClient, OpenAPIDocument, parse_openapi
from deputy.tools.webhook import WebhookClient
from tests.unit.test_tools_openapi import assert_valid_2020_12, shop


@pytest.fixture(scope="module")
def document() -> OpenAPIDocument:
    return parse_openapi(shop())


class Recorder:
    def __init__(self, respond: Callable[[httpx.Request], httpx.Response] | None = None):
        self.requests: list[httpx.Request] = []
        self.respond = respond or (lambda request: httpx.Response(200, json={"ok": True}))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)


def call(
    document: OpenAPIDocument,
    invocation: Invocation,
    recorder: Recorder,
    **options: Any,
) -> InvocationResult:
    async def scenario() -> InvocationResult:
        async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
            client = OpenAPIClient(document, "https://shop.test/api/", http=http, **options)
            try:
                return await client.invoke(invocation)
            finally:
                await client.aclose()

    return asyncio.run(scenario())


def test_path_query_and_header_parameters_are_serialised(document: OpenAPIDocument) -> None:
    recorder = Recorder()
    result = call(
        document,
        Invocation(
            "getOrder", {"order_id": "A/1 b", "expand": ["lines", "tax"], "X-Trace": "t1"}, 5
        ),
        recorder,
    )
    sent = recorder.requests[0]
    assert sent.method == "GET"
    assert sent.url.raw_path == b"/api/orders/A%2F1%20b?expand=lines&expand=tax"
    assert sent.headers["X-Trace"] == "t1"
    assert result.ok and result.status == 200 and result.output == {"ok": True}
    assert result.request["url"] == "https://shop.test/api/orders/A%2F1%20b?expand=lines&expand=tax"
    assert result.response["status"] == 200 and result.response["body"] == {"ok": True}


def test_deep_objects_unexploded_arrays_and_cookies(document: OpenAPIDocument) -> None:
    recorder = Recorder()
    call(
        document,
        Invocation(
            "get_search", {"filter": {"status": "open"}, "ids": [1, 2], "session": "s 1"}, 5
        ),
        recorder,
    )
    sent = recorder.requests[0]
    assert sent.url.params.multi_items() == [("filter[status]", "open"), ("ids", "1,2")]
    assert sent.headers["Cookie"] == "session=s%201"


def test_a_merged_body_and_the_idempotency_key(document: OpenAPIDocument) -> None:
    recorder = Recorder(lambda request: httpx.Response(201, json={"id": "r1"}))
    client_result = call(
        document,
        Invocation("createRefund", {"order_id": "A1", "amount": 5.5, "reason": None}, 5, "idem-1"),
        recorder,
    )
    sent = recorder.requests[0]
    assert sent.url.path == "/api/orders/A1/refunds"
    assert json.loads(sent.content) == {"amount": 5.5, "reason": None}
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["X-Request-Key"] == "idem-1"  # the header the document names
    assert client_result.ok and client_result.status == 201
    assert client_result.request["body"] == {"amount": 5.5, "reason": None}


def test_body_property_and_form_bodies(document: OpenAPIDocument) -> None:
    recorder = Recorder()
    call(document, Invocation("putNotes", {"order_id": "A1", "body": ["a", "b"]}, 5), recorder)
    call(document, Invocation("login", {"user": "ann", "remember": True}, 5), recorder)
    call(
        document, Invocation("patchCustomer", {"id": "c1", "body": {"email": "a@b.c"}}, 5), recorder
    )
    notes, login, patch = recorder.requests
    assert json.loads(notes.content) == ["a", "b"]
    assert login.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert login.content == b"user=ann&remember=true"
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(patch.content) == {"email": "a@b.c"}


def test_unknown_operations_and_missing_path_arguments(document: OpenAPIDocument) -> None:
    with pytest.raises(NotFound):
        call(document, Invocation("nope", {}, 5), Recorder())
    with pytest.raises(ValidationFailed) as caught:
        call(document, Invocation("getOrder", {}, 5), Recorder())
    assert "order_id" in caught.value.message


def test_honours_idempotency_keys_defaults_from_the_document(document: OpenAPIDocument) -> None:
    assert OpenAPIClient(document, "https://x.test").honours_idempotency_keys
    assert not OpenAPIClient(
        document, "https://x.test", honours_idempotency_keys=False
    ).honours_idempotency_keys
    plain = parse_openapi({"openapi": "3.0.0", "paths": {"/a": {"get": {"responses": {}}}}})
    assert not OpenAPIClient(plain, "https://x.test").honours_idempotency_keys
    with pytest.raises(ValidationFailed):
        OpenAPIClient(plain, "/relative")


@pytest.mark.parametrize(
    ("status", "ok"), [(200, True), (204, True), (302, False), (400, False), (404, False)]
)
def test_status_mapping_to_results(document: OpenAPIDocument, status: int, ok: bool) -> None:
    recorder = Recorder(lambda request: httpx.Response(status, json={"detail": "x"}))
    result = call(document, Invocation("getOrder", {"order_id": "A"}, 5), recorder)
    assert result.ok is ok and result.status == status
    assert result.output == {"detail": "x"}


@pytest.mark.parametrize(
    ("status", "retryable", "delivered"),
    [(500, True, True), (503, True, True), (408, True, True), (429, True, False)],
)
def test_status_mapping_to_transport_errors(
    document: OpenAPIDocument, status: int, retryable: bool, delivered: bool
) -> None:
    recorder = Recorder(lambda request: httpx.Response(status, text="busy"))
    with pytest.raises(ToolTransportError) as caught:
        call(document, Invocation("getOrder", {"order_id": "A"}, 5), recorder)
    assert (caught.value.retryable, caught.value.maybe_delivered) == (retryable, delivered)
    assert str(status) in str(caught.value)


@pytest.mark.parametrize(
    ("error", "retryable", "delivered"),
    [
        (httpx.ConnectError("refused"), True, False),
        (httpx.ConnectTimeout("slow connect"), True, False),
        (httpx.ReadTimeout("slow read"), True, True),
        (httpx.ReadError("reset"), True, True),
        (httpx.RemoteProtocolError("garbage"), True, True),
    ],
)
def test_transport_failures(
    document: OpenAPIDocument, error: Exception, retryable: bool, delivered: bool
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(ToolTransportError) as caught:
        call(document, Invocation("getOrder", {"order_id": "A"}, 5), Recorder(fail))
    assert (caught.value.retryable, caught.value.maybe_delivered) == (retryable, delivered)


def test_oversized_responses_are_refused(document: OpenAPIDocument) -> None:
    recorder = Recorder(lambda request: httpx.Response(200, content=b"x" * 5000))
    with pytest.raises(ToolTransportError) as caught:
        call(
            document,
            Invocation("getOrder", {"order_id": "A"}, 5),
            recorder,
            max_response_bytes=1000,
        )
    assert "exceeds 1000 bytes" in str(caught.value) and not caught.value.retryable


def test_records_and_output_are_redacted(document: OpenAPIDocument) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"seen_key": request.headers["X-Shop-Key"], "password": "p", "n": 1},
            headers={"Set-Cookie": "sid=abc"},
        )

    async def scenario() -> InvocationResult:
        async with httpx.AsyncClient(transport=httpx.MockTransport(echo)) as http:
            client = OpenAPIClient(
                document,
                "https://shop.test",
                ApiKeyAuth(name="X-Shop-Key", value="key-0123456789"),
                http=http,
            )
            return await client.invoke(Invocation("getOrder", {"order_id": "A"}, 5))

    result = asyncio.run(scenario())
    everything = json.dumps([result.output, result.request, result.response])
    assert "key-0123456789" not in everything
    assert result.request["headers"]["x-shop-key"] == "[redacted]"
    assert result.response["headers"]["set-cookie"] == "[redacted]"
    assert result.output == {"seen_key": "[redacted]", "password": "p", "n": 1}
    assert result.response["body"]["password"] == "[redacted]"


def test_an_undeclared_path_placeholder_is_filled() -> None:
    raw = {"openapi": "3.0.0", "paths": {"/userProfiles/{userId}": {"get": {"responses": {}}}}}
    recorder = Recorder()
    call(
        parse_openapi(raw), Invocation("get_user_profiles_user_id", {"userId": "u 1"}, 5), recorder
    )
    assert recorder.requests[0].url.raw_path == b"/api/userProfiles/u%201"


def test_a_parameter_described_by_content_is_sent_as_json() -> None:
    raw = {
        "openapi": "3.1.0",
        "paths": {
            "/find": {
                "get": {
                    "operationId": "find",
                    "parameters": [
                        {
                            "name": "where",
                            "in": "query",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        {
                            "name": "X-Filter",
                            "in": "header",
                            "content": {"application/json": {"schema": {"type": "array"}}},
                        },
                    ],
                    "responses": {},
                }
            }
        },
    }
    recorder = Recorder()
    call(
        parse_openapi(raw),
        Invocation("find", {"where": {"status": "open", "n": 2}, "X-Filter": ["a", 1]}, 5),
        recorder,
    )
    sent = recorder.requests[0]
    assert sent.url.params["where"] == '{"status":"open","n":2}'
    assert sent.headers["X-Filter"] == '["a",1]'


# -- webhooks (the same request path as OpenAPI operations) --------------------------------


def webhook_call(client: WebhookClient, invocation: Invocation, recorder: Recorder) -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
            client._caller = HTTPCaller(None, http=http)
            await client.invoke(invocation)

    asyncio.run(scenario())


def test_webhook_placeholders_query_and_body() -> None:
    recorder = Recorder()
    lookup = WebhookClient("GET", "https://hooks.test/orders/{order_id}?v=1", operation="lookup")
    webhook_call(lookup, Invocation("lookup", {"order_id": "a/b", "tags": ["x", "y"]}, 5), recorder)
    create = WebhookClient("POST", "https://hooks.test/orders/{order_id}/notes")
    webhook_call(create, Invocation("webhook", {"order_id": 7, "text": "hi"}, 5, "k-1"), recorder)
    get, post = recorder.requests
    assert get.url.raw_path == b"/orders/a%2Fb?v=1&tags=x&tags=y"
    assert not get.content
    assert post.url.path == "/orders/7/notes"
    assert json.loads(post.content) == {"text": "hi"}
    assert post.headers["Idempotency-Key"] == "k-1"


def test_webhook_definition_and_refusals() -> None:
    client = WebhookClient("DELETE", "https://hooks.test/carts/{cart_id}")
    [tool] = asyncio.run(client.list_tools())
    assert (tool.operation, tool.effect) == ("webhook", "write")
    assert tool.input_schema["required"] == ["cart_id"]
    assert_valid_2020_12(tool.input_schema)
    assert tool.description == "DELETE https://hooks.test/carts/{cart_id}"
    with pytest.raises(ValidationFailed) as caught:
        client.build({})
    assert "missing argument 'cart_id'" in caught.value.message
    with pytest.raises(ValidationFailed) as caught:
        WebhookClient("POST", "https://{tenant}.hooks.test/x")
    assert "only appear in the path or query" in caught.value.message
    with pytest.raises(ValidationFailed):
        WebhookClient("POST", "ftp://hooks.test/x")
    read = WebhookClient("GET", "https://hooks.test/x", effect="read", operation="get_x")
    assert asyncio.run(read.list_tools())[0].effect == "read"
