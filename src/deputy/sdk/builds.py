"""Builds, for `DeputyClient` (`client.builds`) and `AsyncDeputyClient` (the same, awaited).

build = client.builds.create("Handle order returns", materials=[policy.id, tools.id])
build = client.builds.wait(build.id, timeout=600, on_progress=lambda b: print(b.progress))
if build.status == "succeeded":
    open("spec.yaml", "w").write(client.builds.spec(build.id, format="yaml"))
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal, overload

from deputy.builder.report import BuildReport
from deputy.domain import builds as b
from deputy.domain import resources as r
from deputy.domain.scenarios import ScenarioSuite
from deputy.sdk import _build_calls as calls
from deputy.sdk._http import AsyncHTTP, SyncHTTP
from deputy.sdk.errors import DeputyTimeoutError

# A change request may wait on a local model for a minute (the server retries and falls back).
CHANGE_TIMEOUT = 180.0
POLL_SECONDS = 1.0
OnProgress = Callable[[b.Build], None]


def _moved(before: b.Build | None, now: b.Build) -> bool:
    return before is None or (before.status, before.progress) != (now.status, now.progress)


def _timed_out(build_id: str, timeout: float) -> DeputyTimeoutError:
    return DeputyTimeoutError(
        f"build {build_id} did not finish within {timeout:g} s; it goes on: wait again"
    )


class BuildsAPI:
    """The builder: goal + materials → an AgentSpec draft, scenarios and a report; change
    requests in plain language; the draft filed as an agent version."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def create(
        self,
        goal: str,
        *,
        materials: Sequence[str],
        constraints: Sequence[str] = (),
        tool_sources: Sequence[str] = (),
        model: str | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> b.Build:
        """Start a build over uploaded materials (ids) and tool sources (ids); `model="none"`
        builds by rules alone (default: the workspace's model). It runs in the background:
        `wait` for it."""
        return self._http.run(
            calls.create_build(
                goal, materials, constraints, tool_sources, model, name, idempotency_key
            )
        )

    def get(self, build_id: str) -> b.Build:
        return self._http.run(calls.get_build(build_id))

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> r.Page[b.Build]:
        return self._http.run(calls.list_builds(limit, cursor))

    def iter_all(self, *, page_size: int | None = None) -> Iterator[b.Build]:
        cursor: str | None = None
        while True:
            page = self.list(limit=page_size, cursor=cursor)
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def wait(
        self,
        build_id: str,
        *,
        timeout: float | None = None,
        poll: float = POLL_SECONDS,
        on_progress: OnProgress | None = None,
    ) -> b.Build:
        """Poll the build until it has succeeded or failed (returned either way), calling
        `on_progress` whenever its status or progress moved. `DeputyTimeoutError` after
        `timeout` seconds (None: no limit); the build goes on."""
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: b.Build | None = None
        while True:
            build = self.get(build_id)
            if on_progress is not None and _moved(seen, build):
                on_progress(build)
            seen = build
            if build.status in b.FINISHED:
                return build
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                assert timeout is not None
                raise _timed_out(build_id, timeout)
            time.sleep(poll if left is None else min(poll, left))

    @overload
    def spec(self, build_id: str, format: Literal["json"] = "json") -> dict[str, Any]: ...
    @overload
    def spec(self, build_id: str, format: Literal["yaml"]) -> str: ...
    def spec(self, build_id: str, format: Literal["json", "yaml"] = "json") -> dict[str, Any] | str:
        """The current draft: a JSON object, or YAML text with `format="yaml"`."""
        if format == "yaml":
            return self._http.run(calls.spec_yaml(build_id))
        return self._http.run(calls.spec_json(build_id))

    def scenarios(self, build_id: str) -> ScenarioSuite:
        return self._http.run(calls.scenarios(build_id))

    def report(self, build_id: str) -> BuildReport:
        return self._http.run(calls.report(build_id))

    def change(
        self,
        build_id: str,
        text: str,
        *,
        timeout: float | None = CHANGE_TIMEOUT,
        idempotency_key: str | None = None,
    ) -> b.BuildChange:
        """Change the draft in plain language; the answer holds the diff, what was applied,
        the scenarios to run again and any questions."""
        return self._http.run(calls.change_build(build_id, text, timeout, idempotency_key))

    def changes(
        self, build_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[b.BuildChange]:
        """The change requests applied to the build, newest first."""
        return self._http.run(calls.list_changes(build_id, limit, cursor))

    def create_agent(
        self,
        build_id: str,
        *,
        agent_id: str | None = None,
        name: str | None = None,
        note: str | None = None,
        idempotency_key: str | None = None,
    ) -> r.AgentVersion:
        """File the draft as a new version of `agent_id`, or as a new agent `name` (default:
        the draft's name)."""
        return self._http.run(calls.create_agent(build_id, agent_id, name, note, idempotency_key))


class AsyncBuildsAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def create(
        self,
        goal: str,
        *,
        materials: Sequence[str],
        constraints: Sequence[str] = (),
        tool_sources: Sequence[str] = (),
        model: str | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> b.Build:
        return await self._http.run(
            calls.create_build(
                goal, materials, constraints, tool_sources, model, name, idempotency_key
            )
        )

    async def get(self, build_id: str) -> b.Build:
        return await self._http.run(calls.get_build(build_id))

    async def list(self, *, limit: int | None = None, cursor: str | None = None) -> r.Page[b.Build]:
        return await self._http.run(calls.list_builds(limit, cursor))

    async def iter_all(self, *, page_size: int | None = None) -> AsyncIterator[b.Build]:
        cursor: str | None = None
        while True:
            page = await self.list(limit=page_size, cursor=cursor)
            for build in page.data:
                yield build
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def wait(
        self,
        build_id: str,
        *,
        timeout: float | None = None,
        poll: float = POLL_SECONDS,
        on_progress: OnProgress | None = None,
    ) -> b.Build:
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: b.Build | None = None
        while True:
            build = await self.get(build_id)
            if on_progress is not None and _moved(seen, build):
                on_progress(build)
            seen = build
            if build.status in b.FINISHED:
                return build
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                assert timeout is not None
                raise _timed_out(build_id, timeout)
            await asyncio.sleep(poll if left is None else min(poll, left))

    @overload
    async def spec(self, build_id: str, format: Literal["json"] = "json") -> dict[str, Any]: ...
    @overload
    async def spec(self, build_id: str, format: Literal["yaml"]) -> str: ...
    async def spec(
        self, build_id: str, format: Literal["json", "yaml"] = "json"
    ) -> dict[str, Any] | str:
        if format == "yaml":
            return await self._http.run(calls.spec_yaml(build_id))
        return await self._http.run(calls.spec_json(build_id))

    async def scenarios(self, build_id: str) -> ScenarioSuite:
        return await self._http.run(calls.scenarios(build_id))

    async def report(self, build_id: str) -> BuildReport:
        return await self._http.run(calls.report(build_id))

    async def change(
        self,
        build_id: str,
        text: str,
        *,
        timeout: float | None = CHANGE_TIMEOUT,
        idempotency_key: str | None = None,
    ) -> b.BuildChange:
        return await self._http.run(calls.change_build(build_id, text, timeout, idempotency_key))

    async def changes(
        self, build_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[b.BuildChange]:
        return await self._http.run(calls.list_changes(build_id, limit, cursor))

    async def create_agent(
        self,
        build_id: str,
        *,
        agent_id: str | None = None,
        name: str | None = None,
        note: str | None = None,
        idempotency_key: str | None = None,
    ) -> r.AgentVersion:
        return await self._http.run(
            calls.create_agent(build_id, agent_id, name, note, idempotency_key)
        )
