"""Channel throughput and latency, end to end, against a real `deputy serve` process on SQLite:
messages per second and p50/p95 latency per channel with an instant echo model, from the
customer's message to the agent's reply arriving where the customer would see it.

- `rest`: `POST /v1/conversations/{id}/messages`, until its JSON answer (the baseline).
- `slack`, `telegram`, `whatsapp`, `sms`: a webhook signed as the platform signs it, until the
  reply reaches a local fake of the platform's send API (stored, answered in the background,
  queued in the outbox, sent by the sweeper).
- `email`: a mail to the built-in SMTP listener (`DEPUTY_SMTP_LISTEN`), each in the thread of
  the last reply, until the reply reaches a fake outgoing SMTP server.

Each channel: `--messages` messages from `--concurrency` customers at once (each customer
waits for its answer before writing again), after a short warm-up. Writes
benchmarks/results/channels.json.

    PYTHONPATH=src:. /tmp/venv/bin/python benchmarks/channels.py [--messages 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from benchmarks import mail_fakes
from benchmarks.served import Served, deputy_serve, free_port
from examples.retail.server import serve_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.integration.messaging_platforms import (
    KINDS,
    FakePlatforms,
    connection_body,
    fake_platforms,
    webhook,
)

ECHO = "Echo: "
SPEC = {
    "name": "Echo support",
    "goal": "Repeat what the customer says, to measure channels.",
    "mode": "reasoning",
    "guardrails": {"preset": "minimal"},
}
REPLY_TIMEOUT = 60.0
WARM_UP = 8


# ---- an instant model on an OpenAI-compatible endpoint --------------------------------------


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    """`Echo: <the customer's last message>`; a structured question gets `ok` for its first
    field (the shape the in-process echo model of the tests answers)."""
    response_format = body.get("response_format") or {}
    schema = (response_format.get("json_schema") or {}).get("schema")
    if isinstance(schema, dict):
        first = next(iter(schema.get("properties") or {"answer": {}}))
        content = json.dumps({first: "ok"})
    else:
        content = ECHO + _last_user_text(list(body.get("messages") or [])).strip()
    return {
        "id": "chatcmpl-echo",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": body.get("model", "echo"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


@contextmanager
def echo_model() -> Iterator[str]:
    async def completions(request: Request) -> JSONResponse:
        return JSONResponse(_completion(await request.json()))

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    with serve_app(app) as url:
        yield f"{url}/v1"


# ---- setting the served platform up ---------------------------------------------------------


def _call(http: httpx.Client, method: str, path: str, body: Any = None) -> Any:
    response = http.request(method, path, json=body)
    if response.status_code >= 400:
        raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
    return response.json() if response.content else None


def deploy_echo_agent(http: httpx.Client) -> str:
    agent_id: str = _call(http, "POST", "/v1/agents", {"name": "echo"})["id"]
    _call(http, "POST", f"/v1/agents/{agent_id}/versions", {"spec": SPEC})
    _call(http, "PATCH", f"/v1/agents/{agent_id}", {"model": "openai-compatible:echo/echo"})
    _call(http, "POST", f"/v1/agents/{agent_id}/deployments", {"version": 1})
    return agent_id


# ---- measuring ---------------------------------------------------------------------------


def _summary(latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "messages": len(ordered),
        "messages_per_second": round(len(ordered) / wall, 2),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def run(
    one: Callable[[int, int], float], messages: int, concurrency: int, prefix: str
) -> dict[str, float]:
    """`one(customer, n)` sends message n of a customer and returns its latency."""
    for n in range(WARM_UP):  # connections, caches, first conversations
        one(10_000 + n, 0)
    per_customer = [
        messages // concurrency + (c < messages % concurrency) for c in range(concurrency)
    ]

    def customer(c: int) -> list[float]:
        return [one(c, n) for n in range(per_customer[c])]

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency, thread_name_prefix=prefix) as pool:
        latencies = [x for found in pool.map(customer, range(concurrency)) for x in found]
    return _summary(latencies, time.perf_counter() - started)


def rest_channel(served: Served, agent_id: str) -> Callable[[int, int], float]:
    local = threading.local()
    conversations: dict[int, str] = {}

    def one(customer: int, n: int) -> float:
        http: httpx.Client | None = getattr(local, "http", None)
        if http is None:
            headers = {"Authorization": f"Bearer {served.key}"}
            http = local.http = httpx.Client(base_url=served.url, headers=headers, timeout=60)
        if customer not in conversations:
            conversations[customer] = _call(
                http, "POST", "/v1/conversations", {"agent_id": agent_id}
            )["id"]
        text = f"rest customer {customer} message {n}"
        started = time.perf_counter()
        answer = _call(
            http, "POST", f"/v1/conversations/{conversations[customer]}/messages", {"text": text}
        )
        elapsed = time.perf_counter() - started
        if answer["reply"]["text"] != ECHO + text:
            raise SystemExit(f"unexpected reply: {answer['reply']}")
        return elapsed

    return one


def messaging_channel(
    served: Served, kind: str, connection_id: str, platforms: FakePlatforms
) -> Callable[[int, int], float]:
    local = threading.local()
    path = f"/v1/channels/{connection_id}/webhook"

    def one(customer: int, n: int) -> float:
        http: httpx.Client | None = getattr(local, "http", None)
        if http is None:
            http = local.http = httpx.Client(base_url=served.url, timeout=60)
        text = f"{kind} customer {customer} message {n}"
        delivery = webhook(
            kind, text, thread=f"{kind}-{customer}", delivery_id=f"{kind}-{customer}-{n}"
        )
        started = time.perf_counter()
        response = http.post(path, content=delivery.body, headers=delivery.headers)
        if response.status_code != 200:
            raise SystemExit(f"{kind} webhook: {response.status_code} {response.text}")
        sent = platforms.wait_for_text(ECHO + text, REPLY_TIMEOUT)
        return sent.at - started

    return one


def email_channel(listen: str, inbox: mail_fakes.ReplyInbox) -> Callable[[int, int], float]:
    customers: dict[int, mail_fakes.Customer] = {}

    def one(customer: int, n: int) -> float:
        writer = customers.setdefault(
            customer, mail_fakes.Customer(f"customer{customer}@customer.example")
        )
        text = f"email customer {customer} message {n}"
        message = writer.message(text)
        started = time.perf_counter()
        mail_fakes.send(listen, message)
        at, writer.last_reply = inbox.wait_for(ECHO + text, REPLY_TIMEOUT)
        return at - started

    return one


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--channels",
        default=",".join(("rest", *KINDS, "email")),
        help="Which, in this order (rest first).",
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as work,
        echo_model() as model_url,
        fake_platforms() as platforms,
        mail_fakes.reply_inbox() as (inbox, smtp_port),
    ):
        listen = f"127.0.0.1:{free_port()}"
        env = {
            "DEPUTY_MODEL_ENDPOINTS": json.dumps({"echo": {"base_url": model_url}}),
            "DEPUTY_SMTP_LISTEN": listen,
        }
        with deputy_serve(Path(work), env) as served:
            headers = {"Authorization": f"Bearer {served.key}"}
            with httpx.Client(base_url=served.url, headers=headers, timeout=60) as http:
                agent_id = deploy_echo_agent(http)
                connections = {
                    kind: _call(
                        http,
                        "POST",
                        "/v1/channel-connections",
                        connection_body(kind, agent_id, platforms),
                    )["id"]
                    for kind in KINDS
                }
                _call(
                    http,
                    "POST",
                    "/v1/channel-connections",
                    mail_fakes.connection_body(agent_id, smtp_port),
                )
            results: dict[str, dict[str, float]] = {}
            channels: dict[str, Callable[[int, int], float]] = {
                "rest": rest_channel(served, agent_id)
            }
            for kind in KINDS:
                channels[kind] = messaging_channel(served, kind, connections[kind], platforms)
            channels["email"] = email_channel(listen, inbox)
            for name in args.channels.split(","):
                results[name] = run(channels[name], args.messages, args.concurrency, name)
                print(name, json.dumps(results[name]), flush=True)
    base = results["rest"]["messages_per_second"]
    for result in results.values():
        result["throughput_ratio_to_rest"] = round(result["messages_per_second"] / base, 2)
    report = {
        "database": "sqlite",
        "server": "deputy serve (one process)",
        "model": "instant echo on an OpenAI-compatible endpoint (127.0.0.1)",
        "messages_per_channel": args.messages,
        "concurrency": args.concurrency,
        "cpu_count": os.cpu_count(),
        "latency": "from sending the customer's message to the reply reaching the customer "
        "(REST: the answer; messaging: the fake platform API receiving the send; email: the "
        "fake outgoing SMTP server receiving the reply)",
        "results": results,
    }
    out = Path(__file__).parent / "results" / "channels.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
