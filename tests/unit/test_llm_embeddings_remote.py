"""OpenAICompatibleEmbedder against httpx.MockTransport: batching, prefixes, normalisation,
retries with backoff and Retry-After, final 4xx, malformed answers."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest

from deputy.llm.embeddings import Embedder, OpenAICompatibleEmbedder
from deputy.llm.errors import ModelUnavailable

T = TypeVar("T")
BASE = "http://embeddings.test/v1"
DIMS = 4
Handler = Callable[[httpx.Request], httpx.Response]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


class Server:
    """Scripted answers; records every request and every backoff sleep."""

    def __init__(self, *answers: httpx.Response | Exception | None) -> None:
        self.answers = list(answers)  # None: a correct answer computed from the request
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        return answer if answer is not None else embeddings_answer(self.inputs(-1))

    def inputs(self, index: int) -> list[str]:
        body = json.loads(self.requests[index].content)
        return list(body["input"])

    def body(self, index: int) -> dict[str, Any]:
        return dict(json.loads(self.requests[index].content))

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def embedder(self, **options: Any) -> OpenAICompatibleEmbedder:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self.handle))
        settings: dict[str, Any] = {"base_url": BASE, "model": "m", "dimensions": DIMS}
        settings.update(options)
        return OpenAICompatibleEmbedder(client=client, sleep=self.sleep, **settings)


def vector_for(text: str) -> list[float]:
    """A deterministic, deliberately unnormalised vector."""
    return [float(len(text)), 1.0, 2.0, float(sum(map(ord, text)) % 7)]


def embeddings_answer(inputs: list[str], *, reverse: bool = False) -> httpx.Response:
    data = [
        {"object": "embedding", "index": i, "embedding": vector_for(text)}
        for i, text in enumerate(inputs)
    ]
    if reverse:
        data.reverse()
    return httpx.Response(200, json={"object": "list", "data": data, "model": "m"})


def error(status: int, message: str = "nope", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message}}, headers=headers)


def expected(texts: list[str]) -> np.ndarray[Any, Any]:
    raw = np.array([vector_for(t) for t in texts], dtype=np.float32)
    normalised: np.ndarray[Any, Any] = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    return normalised


def test_batches_in_order_and_normalises() -> None:
    server = Server()
    embedder = server.embedder(batch_size=2)
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]

    vectors = run(embedder.embed(texts, kind="passage"))

    assert [server.inputs(i) for i in range(3)] == [["a", "bb"], ["ccc", "dddd"], ["eeeee"]]
    assert vectors.shape == (5, DIMS)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(vectors, expected(texts), rtol=1e-6)
    assert server.sleeps == []


def test_answers_out_of_order_and_base64_are_placed_by_index() -> None:
    texts = ["one", "two", "three"]
    shuffled = embeddings_answer(texts, reverse=True)
    packed = json.loads(shuffled.content)
    packed["data"][0]["embedding"] = base64.b64encode(
        np.array(packed["data"][0]["embedding"], dtype="<f4").tobytes()
    ).decode()
    server = Server(httpx.Response(200, json=packed))

    vectors = run(server.embedder().embed(texts, kind="passage"))

    np.testing.assert_allclose(vectors, expected(texts), rtol=1e-6)


def test_prefixes_input_type_and_headers() -> None:
    server = Server()
    embedder = server.embedder(
        query_prefix="query: ",
        passage_prefix="passage: ",
        send_input_type=True,
        api_key="sk-test",
        headers={"X-Tenant": "acme"},
    )

    run(embedder.embed(["where is my parcel"], kind="query"))
    run(embedder.embed(["Parcels ship in 2 days."], kind="passage"))

    assert server.inputs(0) == ["query: where is my parcel"]
    assert server.inputs(1) == ["passage: Parcels ship in 2 days."]
    assert server.body(0)["input_type"] == "query"
    assert server.body(1)["input_type"] == "passage"
    assert server.body(0)["model"] == "m"
    assert "dimensions" not in server.body(0)
    request = server.requests[0]
    assert request.url == f"{BASE}/embeddings"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["x-tenant"] == "acme"


def test_no_key_no_authorization_header_and_requested_dimensions() -> None:
    server = Server()
    run(server.embedder(request_dimensions=True).embed(["x"], kind="query"))

    assert "authorization" not in server.requests[0].headers
    assert server.body(0)["dimensions"] == DIMS
    assert "input_type" not in server.body(0)


def test_empty_text_is_sent_as_a_space_and_bad_characters_are_cleaned() -> None:
    server = Server()
    run(server.embedder().embed(["", "a\x00b", "bad \ud800 surrogate"], kind="passage"))

    assert server.inputs(0) == [" ", "a b", "bad \ufffd surrogate"]


def test_retries_429_honouring_retry_after_seconds() -> None:
    server = Server(error(429, "slow down", **{"Retry-After": "2"}), None)

    vectors = run(server.embedder().embed(["hello"], kind="query"))

    assert len(server.requests) == 2
    assert server.sleeps == [2.0]
    assert vectors.shape == (1, DIMS)


def test_retry_after_as_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    server = Server(error(503, **{"Retry-After": when}), None)

    run(server.embedder().embed(["hello"], kind="query"))

    assert len(server.sleeps) == 1
    assert 25.0 <= server.sleeps[0] <= 30.0


def test_5xx_backs_off_exponentially_with_jitter() -> None:
    server = Server(error(500), error(502), error(503), None)

    run(server.embedder(max_retries=3, backoff_seconds=1.0).embed(["hello"], kind="query"))

    assert len(server.requests) == 4
    for attempt, delay in enumerate(server.sleeps):
        assert 0.5 * 2**attempt <= delay <= 2**attempt


def test_gives_up_after_max_retries_with_the_last_retry_after() -> None:
    server = Server(*[error(503, "overloaded", **{"Retry-After": "1"}) for _ in range(3)])

    with pytest.raises(ModelUnavailable) as caught:
        run(server.embedder(max_retries=2).embed(["hello"], kind="query"))

    assert len(server.requests) == 3
    assert server.sleeps == [1.0, 1.0]
    assert caught.value.retry_after == 1.0
    assert "503" in caught.value.message
    assert "overloaded" in caught.value.message


def test_retry_after_beyond_the_limit_fails_at_once() -> None:
    server = Server(error(429, **{"Retry-After": "3600"}))

    with pytest.raises(ModelUnavailable) as caught:
        run(server.embedder(max_retry_after_seconds=60).embed(["hello"], kind="query"))

    assert len(server.requests) == 1
    assert server.sleeps == []
    assert caught.value.retry_after == 3600.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_other_4xx_are_never_retried(status: int) -> None:
    server = Server(error(status, "model 'm' not found"))

    with pytest.raises(ModelUnavailable) as caught:
        run(server.embedder(api_key="sk-secret-key").embed(["hello"], kind="query"))

    assert len(server.requests) == 1
    assert server.sleeps == []
    assert str(status) in caught.value.message
    assert "model 'm' not found" in caught.value.message
    assert "sk-secret-key" not in caught.value.message
    assert caught.value.code == "unavailable"


def test_connection_errors_and_timeouts_are_retried() -> None:
    server = Server(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), None)

    vectors = run(server.embedder().embed(["hello"], kind="query"))

    assert len(server.requests) == 3
    assert len(server.sleeps) == 2
    assert vectors.shape == (1, DIMS)


def test_unreachable_server_becomes_model_unavailable() -> None:
    server = Server(*[httpx.ConnectError("refused") for _ in range(4)])

    with pytest.raises(ModelUnavailable, match="ConnectError"):
        run(server.embedder(max_retries=3).embed(["hello"], kind="query"))

    assert len(server.requests) == 4


def test_unsupported_protocol_is_not_retried() -> None:
    server = Server(httpx.UnsupportedProtocol("ftp"))

    with pytest.raises(ModelUnavailable):
        run(server.embedder().embed(["hello"], kind="query"))

    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (httpx.Response(200, text="<html>"), "not JSON"),
        (httpx.Response(200, json={"data": []}), "0 embeddings for 1 inputs"),
        (httpx.Response(200, json=[1, 2]), "no embeddings"),
        (httpx.Response(200, json={"data": [{"index": 0, "embedding": [1.0, 2.0]}]}), "2-dim"),
        (httpx.Response(200, json={"data": [{"index": 5, "embedding": [1.0] * 4}]}), "index"),
        (httpx.Response(200, json={"data": [{"index": 0, "embedding": ["a"] * 4}]}), "numbers"),
        (httpx.Response(200, json={"data": [{"index": 0}]}), "no embedding"),
        (httpx.Response(200, json={"data": [{"index": 0, "embedding": "!!"}]}), "numbers"),
    ],
)
def test_malformed_answers_become_model_unavailable(answer: httpx.Response, problem: str) -> None:
    server = Server(answer)

    with pytest.raises(ModelUnavailable, match=problem):
        run(server.embedder().embed(["hello"], kind="query"))

    assert len(server.requests) == 1


def test_non_finite_values_are_rejected() -> None:
    answer = httpx.Response(
        200, content=b'{"data": [{"index": 0, "embedding": [1.0, NaN, 0.0, 0.0]}]}'
    )

    with pytest.raises(ModelUnavailable, match="non-finite"):
        run(Server(answer).embedder().embed(["hello"], kind="query"))


def test_zero_vector_stays_zero() -> None:
    answer = httpx.Response(200, json={"data": [{"index": 0, "embedding": [0.0] * DIMS}]})

    vectors = run(Server(answer).embedder().embed(["hello"], kind="query"))

    assert np.array_equal(vectors, np.zeros((1, DIMS), dtype=np.float32))


def test_no_texts_no_request() -> None:
    server = Server()

    vectors = run(server.embedder().embed([], kind="passage"))

    assert vectors.shape == (0, DIMS)
    assert server.requests == []


def test_misuse_is_rejected_before_any_request() -> None:
    server = Server()
    embedder = server.embedder()

    with pytest.raises(TypeError, match="sequence of texts"):
        run(embedder.embed("hello", kind="query"))
    with pytest.raises(ValueError, match="kind"):
        run(embedder.embed(["hello"], kind="document"))  # type: ignore[arg-type]
    assert server.requests == []


def test_owned_client_is_closed_and_shared_client_is_not() -> None:
    async def scenario() -> tuple[bool, bool]:
        shared = httpx.AsyncClient(transport=httpx.MockTransport(Server().handle))
        borrowing = OpenAICompatibleEmbedder(
            base_url=BASE, model="m", dimensions=DIMS, client=shared
        )
        owning = OpenAICompatibleEmbedder(base_url=BASE, model="m", dimensions=DIMS)
        await borrowing.embed(["x"], kind="query")
        await borrowing.aclose()
        await owning.aclose()  # never used: nothing to close, and no error
        closed = shared.is_closed
        await shared.aclose()
        return closed, shared.is_closed

    assert run(scenario()) == (False, True)


def test_is_an_embedder_with_name_and_dimensions() -> None:
    embedder = Server().embedder(name="openai-compatible:ollama/m")

    assert isinstance(embedder, Embedder)
    assert embedder.name == "openai-compatible:ollama/m"
    assert embedder.dimensions == DIMS


@pytest.mark.parametrize(
    "options",
    [{"dimensions": 0}, {"batch_size": 0}, {"max_retries": -1}, {"timeout_seconds": 0}],
)
def test_invalid_options(options: dict[str, Any]) -> None:
    settings: dict[str, Any] = {"base_url": BASE, "model": "m", "dimensions": DIMS, **options}
    with pytest.raises(ValueError, match="must be"):
        OpenAICompatibleEmbedder(**settings)
