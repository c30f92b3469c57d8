"""A scripted model behind a real OpenAI-compatible HTTP endpoint on 127.0.0.1, for tests whose
Deputy server runs in another process (a `ScriptedModel` cannot cross the process boundary).

`decide(messages, tools)` gets the request's chat messages and tool names and returns either a
reply text or a tool call `(name, arguments)`; the server wraps it in a chat completion."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from examples.retail.server import serve_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Decision = str | tuple[str, dict[str, Any]]
Decide = Callable[[list[dict[str, Any]], list[str]], Decision]


@dataclass
class ScriptedEndpoint:
    decide: Decide
    requests: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.requests.append(body)
            count = len(self.requests)
        tools = [t["function"]["name"] for t in body.get("tools") or []]
        decision = self.decide(list(body.get("messages") or []), tools)
        message: dict[str, Any] = {"role": "assistant", "content": None}
        finish = "stop"
        if isinstance(decision, str):
            message["content"] = decision
        else:
            name, arguments = decision
            message["tool_calls"] = [
                {
                    "id": f"call_{count}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
            ]
            finish = "tool_calls"
        return {
            "id": f"chatcmpl-{count}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }


@contextmanager
def scripted_openai(decide: Decide) -> Iterator[tuple[str, ScriptedEndpoint]]:
    """Serve `decide` as `<url>/v1/chat/completions`; yields the base URL (with `/v1`)."""
    endpoint = ScriptedEndpoint(decide)

    async def completions(request: Request) -> JSONResponse:
        return JSONResponse(endpoint.completion(await request.json()))

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    with serve_app(app) as url:
        yield f"{url}/v1", endpoint
