"""Canonical arguments, customer confirmations and idempotency keys.

An irreversible call runs only when the customer confirmed *exactly this call* earlier in the
conversation: the runtime records a `Confirmation` (tool + SHA-256 of the canonical arguments +
the customer's message) when the customer says yes to a confirm step, and the executor looks for
one that matches. The idempotency key of a write or irreversible call is derived from where it is
made (workspace, conversation, step, tool), never from its arguments, so a retry of the same step
after a crash carries the same key whatever the model produces the second time."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SUMMARY_VALUE_CHARS = 120


def _normalise(value: Any) -> Any:
    """JSON has one number type: 25.0 and 25 are the same argument."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, Mapping):
        return {str(key): _normalise(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(item) for item in value]
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, integral floats as integers: equal data, equal text."""
    return json.dumps(
        _normalise(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def arguments_sha256(arguments: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(arguments).encode()).hexdigest()


def idempotency_key(workspace_id: str, conversation_id: str, step_key: str, tool: str) -> str:
    """The key of the call made at `step_key` of a conversation: the same on every retry."""
    material = "\x1f".join(("deputy.tool-call/v1", workspace_id, conversation_id, step_key, tool))
    return "dpy-" + hashlib.sha256(material.encode()).hexdigest()[:48]


@dataclass(frozen=True)
class Confirmation:
    """The customer said yes to this exact call (tool and arguments) in message `message_id`."""

    tool: str
    arguments_sha256: str
    message_id: str

    @classmethod
    def for_call(cls, tool: str, arguments: Mapping[str, Any], message_id: str) -> Confirmation:
        return cls(tool=tool, arguments_sha256=arguments_sha256(arguments), message_id=message_id)

    def matches(self, tool: str, digest: str) -> bool:
        return self.tool == tool and self.arguments_sha256 == digest


def find_confirmation(
    confirmations: Iterable[Confirmation], tool: str, arguments: Mapping[str, Any]
) -> Confirmation | None:
    digest = arguments_sha256(arguments)
    return next((c for c in confirmations if c.matches(tool, digest)), None)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else canonical_json(value)
    if len(text) > SUMMARY_VALUE_CHARS:
        text = text[: SUMMARY_VALUE_CHARS - 1] + "…"
    return json.dumps(text, ensure_ascii=False) if isinstance(value, str) else text


def confirmation_summary(tool: str, description: str, arguments: Mapping[str, Any]) -> str:
    """What the customer must confirm, in one line the runtime can put to them."""
    shown = ", ".join(f"{key}={_short(arguments[key])}" for key in sorted(arguments))
    what = f"{tool}({shown})"
    first_line = description.strip().splitlines()[0] if description.strip() else ""
    return f"{what}: {first_line}" if first_line else what
