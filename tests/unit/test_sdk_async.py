"""`AsyncDeputyClient` against the real app in process (httpx's ASGI transport)."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.domain.errors import NotFound
from deputy.llm.errors import ModelUnavailable
from deputy.llm.registry import ModelRegistry
from deputy.sdk import (
    AsyncDeputyClient,
    AuthenticationError,
    DeputyConnectionError,
    NotFoundError,
    RetryPolicy,
    UnavailableError,
)
from deputy.services.model_hub import DatabaseUsageSink
from deputy.services.platform import Platform
from deputy.services.startup import prepare
from deputy.testing import ScriptedModel, reply

BASE = "http://deputy.test"
FAST = RetryPolicy(max_retries=3, backoff=0.0, jitter=False)


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Platform, str]]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    deployed, bootstrap = prepare(load_settings())
    assert bootstrap.created is not None
    try:
        yield deployed, bootstrap.created.owner_key.secret
    finally:
        deployed.close()


@pytest.fixture
def server(platform: tuple[Platform, str]) -> tuple[ASGIApp, str]:
    return create_app(platform[0]), platform[1]


def connect(
    app: ASGIApp, key: str, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncDeputyClient:
    return AsyncDeputyClient(
        BASE, key, transport=transport or httpx.ASGITransport(app=app), retry=FAST
    )


def test_async_resources_end_to_end(server: tuple[ASGIApp, str], tmp_path: Path) -> None:
    app, key = server

    async def scenario() -> None:
        async with connect(app, key) as client:
            assert (await client.health()).status == "ok"
            assert (await client.ready()).ready
            workspace = await client.workspace.get()
            assert workspace.name == "Default workspace"
            assert (await client.workspace.rename("Async")).name == "Async"

            member = await client.members.add("ada@example.com", "Ada", "builder")
            assert (await client.members.update(member.id, name="Ada L.")).name == "Ada L."
            assert {m.id async for m in client.members.iter_all()} >= {member.id}

            content = b"# SOP\n1. Greet.\n2. Help.\n"
            seen: list[int] = []
            material = await client.materials.upload(
                content, filename="sop.md", progress=lambda done, _total: seen.append(done)
            )
            assert material.sha256 == hashlib.sha256(content).hexdigest()
            assert seen[-1] == len(content)
            assert await client.materials.read(material.id) == content
            target = tmp_path / "sop-copy.md"
            assert await client.materials.download(material.id, target) == len(content)
            assert target.read_bytes() == content

            agent = await client.agents.create("refunds")
            version = await client.agents.versions.create(
                agent.id, {"name": "refunds", "goal": "Refund orders."}, note="v1"
            )
            assert (await client.agents.versions.get(agent.id, 1)).id == version.id
            assert [v.number async for v in client.agents.versions.iter_all(agent.id)] == [1]

            key_info = await client.keys.create("robot", kind="service")
            assert (await client.keys.revoke(key_info.key.id)).revoked_at is not None
            await client.materials.delete(material.id)
            with pytest.raises(NotFound):
                await client.materials.get(material.id)

    asyncio.run(scenario())


def test_async_pagination_iterates_every_page(server: tuple[ASGIApp, str]) -> None:
    app, key = server

    async def scenario() -> None:
        async with connect(app, key) as client:
            created = [
                (
                    await client.materials.upload(
                        io.BytesIO(f"doc {n}\n".encode()), filename=f"doc-{n}.txt"
                    )
                ).id
                for n in range(5)
            ]
            pages = [page async for page in client.materials.iter_pages(page_size=2)]
            assert [len(page.data) for page in pages] == [2, 2, 1]
            ids = [m.id async for m in client.materials.iter_all(page_size=2)]
            assert ids == list(reversed(created))

    asyncio.run(scenario())


def test_async_errors_are_mapped(server: tuple[ASGIApp, str]) -> None:
    app, key = server

    async def scenario() -> None:
        async with connect(app, key) as client:
            with pytest.raises(NotFoundError) as caught:
                await client.agents.versions.get("agt_missing", 1)
            assert caught.value.status == 404
            assert caught.value.request_id and caught.value.request_id.startswith("req_")
        async with connect(app, "dpy_key_wrong_secret") as stranger:
            with pytest.raises(AuthenticationError):
                await stranger.workspace.get()

    asyncio.run(scenario())


class LoseFirstPostAnswer(httpx.AsyncBaseTransport):
    """Lets the first POST reach the app, then drops its answer, as a broken connection would."""

    def __init__(self, app: ASGIApp) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.posts: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST":
            self.posts.append(request)
            if len(self.posts) == 1:
                await response.aread()
                raise httpx.ReadError("connection reset by peer", request=request)
        return response


def test_async_post_retry_is_idempotent(server: tuple[ASGIApp, str]) -> None:
    app, key = server
    flaky = LoseFirstPostAnswer(app)

    async def scenario() -> None:
        async with connect(app, key, flaky) as client:
            created = await client.keys.create("deploy bot", kind="service")
        assert len(flaky.posts) == 2
        first, retry = (post.headers["Idempotency-Key"] for post in flaky.posts)
        assert first == retry
        async with connect(app, key) as client:
            bots = [k async for k in client.keys.iter_all() if k.name == "deploy bot"]
            assert [k.id for k in bots] == [created.key.id]

    asyncio.run(scenario())


def test_async_connection_failures_are_bounded(server: tuple[ASGIApp, str]) -> None:
    _app, key = server
    attempts: list[httpx.Request] = []

    async def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    async def scenario() -> None:
        async with AsyncDeputyClient(
            BASE,
            key,
            transport=httpx.MockTransport(refuse),
            retry=RetryPolicy(max_retries=2, backoff=0),
        ) as client:
            with pytest.raises(DeputyConnectionError):
                await client.agents.list()

    asyncio.run(scenario())
    assert len(attempts) == 3


async def _no_wait(_seconds: float) -> None:
    return None


def test_async_models_endpoints_and_model_settings(
    platform: tuple[Platform, str], server: tuple[ASGIApp, str]
) -> None:
    app, key = server
    hub = platform[0].models
    fake = ScriptedModel(
        [reply("hi"), *[ModelUnavailable("provider down")] * 3], name="openai:gpt-test"
    )
    hub.root = ModelRegistry(
        hub.base_settings,
        local=hub.local,
        usage_sink=DatabaseUsageSink(platform[0].db),
        served={fake.name: fake},
        sleep=_no_wait,
    )
    tries: list[httpx.Request] = []
    inner = httpx.ASGITransport(app=app)

    async def count(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models/try":
            tries.append(request)
        return await inner.handle_async_request(request)

    async def scenario() -> None:
        async with connect(app, key, httpx.MockTransport(count)) as client:
            catalog = await client.models.list()
            assert catalog.default_model == catalog.platform_default

            workspace = await client.workspace.update(default_model="openai:gpt-test")
            assert workspace.default_model == "openai:gpt-test"
            result = await client.models.run("Say hi", max_tokens=8)  # the workspace's model
            assert (result.model, result.text) == ("openai:gpt-test", "hi")
            assert fake.last_request.max_tokens == 8
            with pytest.raises(UnavailableError):
                await client.models.run("again")
            assert len(tries) == 2  # the failure was not retried by the client
            kept = await client.workspace.update(name="Renamed")
            assert kept.default_model == "openai:gpt-test"
            assert (await client.workspace.update(default_model=None)).default_model is None

            agent = await client.agents.create("refunds", "Refund desk")
            chosen = await client.agents.update(agent.id, model="local:smollm2-135m")
            assert chosen.model == "local:smollm2-135m"
            described = await client.agents.update(agent.id, description="Returns")
            assert (described.model, described.description) == ("local:smollm2-135m", "Returns")
            assert (await client.agents.update(agent.id, model=None)).model is None

            endpoint = await client.model_endpoints.create(
                "ollama", "http://127.0.0.1:11434/v1", api_key="sk-secret"
            )
            assert endpoint.has_api_key
            assert await client.model_endpoints.list() == [endpoint]
            await client.model_endpoints.delete("ollama")
            assert await client.model_endpoints.list() == []

    asyncio.run(scenario())
    fake.assert_all_used()
