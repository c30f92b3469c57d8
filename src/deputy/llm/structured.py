"""Structured output that small models get right: a request's JSON Schema is capped (string
lengths, tokens), the reply is parsed and validated, and an invalid reply is retried a bounded
number of times with the validation error shown to the model. When it still cannot comply the
caller gets `ModelOutputInvalid`.

The model below decodes under the schema where it can (native structured output on providers,
a grammar on local models); this layer is what makes the contract hold for every model."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import jsonschema_rs

from deputy.llm.errors import ModelError, ModelOutputInvalid
from deputy.llm.types import (
    Message,
    Model,
    ModelCapabilities,
    ModelRequest,
    ModelResponse,
    StreamChunk,
)

MAX_REPORTED_ERRORS = 5
_ALTERNATIVES = (
    jsonschema_rs.ValidationErrorKind.OneOfNotValid,
    jsonschema_rs.ValidationErrorKind.AnyOf,
)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class StructuredPolicy:
    """`max_attempts` counts the first call. `max_string_length` is added as `maxLength` to every
    string in the schema that has no bound of its own (None: leave them unbounded);
    `max_tokens` is used when the request sets none."""

    max_attempts: int = 3
    max_string_length: int | None = 2000
    max_tokens: int | None = 1024


def cap_schema(schema: Mapping[str, Any], max_string_length: int | None) -> dict[str, Any]:
    """A copy of `schema` in which every unbounded string gets `maxLength`."""
    copy = plain_json(schema)
    if max_string_length is None:
        return copy
    capped: dict[str, Any] = _cap(copy, max_string_length)
    return capped


def plain_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy made of plain dicts and lists (read-only mappings welcome)."""
    copy: dict[str, Any] = json.loads(json.dumps(value, default=dict))
    return copy


def _cap(node: Any, limit: int) -> Any:
    if isinstance(node, list):
        return [_cap(item, limit) for item in node]
    if not isinstance(node, dict):
        return node
    capped = {key: _cap(value, limit) for key, value in node.items()}
    types = node.get("type")
    is_string = types == "string" or (isinstance(types, list) and "string" in types)
    unbounded = not any(key in node for key in ("maxLength", "enum", "const"))
    if is_string and unbounded:
        capped["maxLength"] = limit
    return capped


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(json.loads(schema_json), offline=True)


def check_schema(schema: Mapping[str, Any]) -> jsonschema_rs.Validator:
    """The compiled validator of `schema`; ModelError if it is not a valid JSON Schema.
    Remote `$ref`s are never fetched."""
    try:
        return _validator(json.dumps(schema, sort_keys=True, default=dict))
    except (jsonschema_rs.ValidationError, ValueError) as exc:
        raise ModelError(f"the response schema is not a valid JSON Schema: {exc}") from exc


def schema_errors(schema: Mapping[str, Any], value: Any) -> list[str]:
    """Validation errors of `value` against `schema`, each prefixed with its JSON path."""
    errors = []
    for error in _leaves(check_schema(schema).iter_errors(value)):
        path = "".join(
            f"[{part!r}]" if isinstance(part, int) else f".{part}" for part in error.instance_path
        )
        errors.append(f"${path}: {error.message}")
    return errors


def _leaves(errors: Iterable[jsonschema_rs.ValidationError]) -> list[jsonschema_rs.ValidationError]:
    """Errors to show a model: for a failed `oneOf`/`anyOf`, those of the alternative that came
    closest (fewest errors) instead of "not valid under any of the schemas"."""
    out: list[jsonschema_rs.ValidationError] = []
    for error in errors:
        kind = error.kind
        if isinstance(kind, _ALTERNATIVES) and kind.context:
            closest = min(kind.context, key=lambda branch: len(list(branch)))
            out.extend(_leaves(closest))
        else:
            out.append(error)
    return out


def parse_json(text: str) -> Any:
    """Decode a JSON reply, tolerating surrounding whitespace and a Markdown code fence."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1)
    return json.loads(stripped)


def decode(response: ModelResponse, schema: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """The reply's JSON value and what is wrong with it (empty when it satisfies `schema`)."""
    if response.text.strip():
        try:
            value = parse_json(response.text)
        except ValueError as exc:
            return None, [f"the reply is not valid JSON ({exc})"]
    elif response.parsed is not None:
        value = response.parsed
    else:
        return None, ["the reply was empty"]
    return value, schema_errors(schema, value)


class StructuredModel:
    """Enforces `response_schema` on every reply of `model` (pass-through without one).

    A reply that calls tools is returned as is. The returned response's usage and latency add up
    every attempt."""

    def __init__(self, model: Model, policy: StructuredPolicy | None = None) -> None:
        self.inner = model
        self.policy = policy or StructuredPolicy()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def capabilities(self) -> ModelCapabilities:
        return self.inner.capabilities

    async def request(self, request: ModelRequest) -> ModelResponse:
        if request.response_schema is None:
            return await self.inner.request(request)
        schema = cap_schema(request.response_schema, self.policy.max_string_length)
        check_schema(schema)  # fail before any call on an invalid schema
        current = replace(
            request,
            response_schema=schema,
            max_tokens=request.max_tokens or self.policy.max_tokens,
        )
        total = None
        latency = 0.0
        problems: list[str] = []
        attempts = max(1, self.policy.max_attempts)
        response: ModelResponse | None = None
        for _ in range(attempts):
            response = await self.inner.request(current)
            total = response.usage if total is None else total + response.usage
            latency += response.latency_seconds
            if response.tool_calls:
                return replace(response, usage=total, latency_seconds=latency)
            value, problems = decode(response, schema)
            if not problems:
                return replace(response, parsed=value, usage=total, latency_seconds=latency)
            current = replace(
                current,
                messages=(
                    *current.messages,
                    Message.assistant(response.text),
                    Message.user(_repair_prompt(problems, response)),
                ),
            )
        assert response is not None
        raise ModelOutputInvalid(
            f"{self.name} did not produce output matching the schema after {attempts} "
            f"attempt(s): {'; '.join(problems[:MAX_REPORTED_ERRORS])}",
            details={
                "attempts": attempts,
                "errors": problems[:MAX_REPORTED_ERRORS],
                "last_output": response.text[:500],
            },
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        """Without a schema, the inner stream. With one, the reply is validated (and perhaps
        retried) before anything is sent, then comes as one text chunk and the final chunk."""
        if request.response_schema is None:
            async for chunk in self.inner.stream(request):
                yield chunk
            return
        response = await self.request(request)
        if response.text:
            yield StreamChunk(text=response.text)
        yield StreamChunk(response=response)


def _repair_prompt(problems: list[str], response: ModelResponse) -> str:
    listed = "\n".join(f"- {problem}" for problem in problems[:MAX_REPORTED_ERRORS])
    hint = ""
    if response.finish_reason == "length":
        hint = "\nYour reply was cut off at the token limit: keep every string value short."
    return (
        "Your previous reply does not satisfy the required JSON Schema:\n"
        f"{listed}{hint}\n"
        "Reply again with only the corrected JSON value, nothing else."
    )
