"""One `Model` over one pydantic-ai model adapter, called at the model-request level
(`pydantic_ai.direct`), never through pydantic-ai's agent loop."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from pydantic_ai import direct
from pydantic_ai import messages as pai
from pydantic_ai.models import Model as PaiModel
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.settings import ModelSettings

from deputy.llm.providers import translate
from deputy.llm.types import ModelCapabilities, ModelRequest, ModelResponse, StreamChunk


class PydanticAIModel:
    """`name` is our `"provider:model"`; `timeout` is handed to the HTTP client per attempt."""

    def __init__(
        self,
        name: str,
        model: PaiModel,
        capabilities: ModelCapabilities,
        *,
        timeout: float | None = None,
    ) -> None:
        self._name = name
        self._model = model
        self._capabilities = capabilities
        self._timeout = timeout

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._capabilities

    @property
    def adapter(self) -> PaiModel:
        return self._model

    async def request(self, request: ModelRequest) -> ModelResponse:
        messages, settings, parameters = self._prepare(request)
        start = time.perf_counter()
        try:
            response = await direct.model_request(
                self._model,
                messages,
                model_settings=settings,
                model_request_parameters=parameters,
                instrument=False,
            )
            return translate.from_response(
                response,
                model=self._name,
                has_schema=request.response_schema is not None,
                latency=time.perf_counter() - start,
            )
        except Exception as error:
            raise translate.from_error(error, model=self._name) from error

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        messages, settings, parameters = self._prepare(request)
        start = time.perf_counter()
        try:
            async with direct.model_request_stream(
                self._model,
                messages,
                model_settings=settings,
                model_request_parameters=parameters,
                instrument=False,
            ) as stream:
                async for event in stream:
                    text = _text_of(event)
                    if text:
                        yield StreamChunk(text=text)
                final = stream.get()
            response = translate.from_response(
                final,
                model=self._name,
                has_schema=request.response_schema is not None,
                latency=time.perf_counter() - start,
            )
        except Exception as error:
            raise translate.from_error(error, model=self._name) from error
        yield StreamChunk(response=response)

    def _prepare(
        self, request: ModelRequest
    ) -> tuple[list[pai.ModelMessage], ModelSettings, ModelRequestParameters]:
        return (
            translate.to_messages(request.messages),
            translate.to_settings(request, timeout=self._timeout),
            translate.to_parameters(
                request, native_json_schema=self._capabilities.native_json_schema
            ),
        )


def _text_of(event: pai.ModelResponseStreamEvent) -> str:
    if isinstance(event, pai.PartStartEvent) and isinstance(event.part, pai.TextPart):
        return event.part.content
    if isinstance(event, pai.PartDeltaEvent) and isinstance(event.delta, pai.TextPartDelta):
        return event.delta.content_delta
    return ""
