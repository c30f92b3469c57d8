"""A stand-in for a platform's HTTP API in sender unit tests: `httpx.MockTransport` answering
from a script and recording every request (no network)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from deputy.channels.base import Sender
from deputy.domain.channels import KindConfig, Outbound

Answer = tuple[int, dict[str, Any]]


@dataclass
class FakeApi:
    """Answers each request with the next scripted `(status, json)` (the last one repeats)."""

    answers: list[Answer]
    requests: list[httpx.Request] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            status, body = self.answers[min(len(self.requests), len(self.answers)) - 1]
            return httpx.Response(status, json=body)

        return httpx.MockTransport(handle)

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def outbound(text: str = "Echo: hi", **reply_to: Any) -> Outbound:
    return Outbound(conversation_id="conv_1", entry_seq=3, text=text, reply_to=reply_to)


def send(
    sender: Sender, config: KindConfig, secrets: Mapping[str, str], message: Outbound
) -> str | None:
    return asyncio.run(sender.send(config, secrets, message))
