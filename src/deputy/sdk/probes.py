"""Synthetic probes, for `DeputyClient` (`client.probes`) and `AsyncDeputyClient` (the same,
awaited): scripted scenarios run on a schedule against an agent's production deployment.

probe = client.probes.create(
    agent.id,
    "opening hours",
    {"script": ["When are you open?"], "assertions": {"must_communicate": ["9am"]}},
    interval_seconds=300,
)
run = client.probes.run(probe.id)            # now; waits for the run
print(run.status, run.reason, run.alert)
for run in client.probes.iter_runs(probe.id):
    print(run.started_at, run.status)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from deputy.domain import probes as p
from deputy.domain import resources as r
from deputy.sdk._calls import Call, _list_params, _model, _nothing, _page, _post, _seg
from deputy.sdk._http import AsyncHTTP, SyncHTTP

PATH = "/v1/probes"
RUN_TIMEOUT = 900.0
"""Seconds to wait for a run started now: every scripted turn may take its timeout."""
UPDATABLE = frozenset(p.ProbeUpdate.model_fields)


def _probe(probe_id: str) -> str:
    return f"{PATH}/{_seg(probe_id)}"


def create_probe(
    agent_id: str,
    name: str,
    scenario: Mapping[str, Any],
    options: Mapping[str, Any],
    idempotency_key: str | None,
) -> Call[p.Probe]:
    body = {"agent_id": agent_id, "name": name, "scenario": dict(scenario), **options}
    return _post(PATH, _model(p.Probe), body, idempotency_key)


def list_probes(
    agent_id: str | None, limit: int | None, cursor: str | None
) -> Call[r.Page[p.Probe]]:
    params = _list_params(limit, cursor)
    if agent_id is not None:
        params["agent_id"] = agent_id
    return Call("GET", PATH, _page(p.Probe), params=params)


def get_probe(probe_id: str) -> Call[p.Probe]:
    return Call("GET", _probe(probe_id), _model(p.Probe))


def update_probe(probe_id: str, changes: Mapping[str, Any]) -> Call[p.Probe]:
    unknown = sorted(set(changes) - UPDATABLE)
    if unknown:
        raise ValueError(f"a probe has no setting {', '.join(unknown)}")
    return Call("PATCH", _probe(probe_id), _model(p.Probe), json=dict(changes))


def delete_probe(probe_id: str) -> Call[None]:
    return Call("DELETE", _probe(probe_id), _nothing, gone_is_done=True)


def run_probe(probe_id: str) -> Call[p.ProbeRun]:
    """Not retried: a second attempt would find the first one running (409)."""
    return Call(
        "POST",
        f"{_probe(probe_id)}/run",
        _model(p.ProbeRun),
        retry=False,
        timeout=RUN_TIMEOUT,
    )


def list_runs(
    probe_id: str, status: p.ProbeStatus | None, limit: int | None, cursor: str | None
) -> Call[r.Page[p.ProbeRun]]:
    params = _list_params(limit, cursor)
    if status is not None:
        params["status"] = status
    return Call("GET", f"{_probe(probe_id)}/runs", _page(p.ProbeRun), params=params)


class ProbesAPI:
    """Probes: define, change, run now, read runs."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def create(
        self,
        agent_id: str,
        name: str,
        scenario: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> p.Probe:
        """`scenario`: a sandbox scenario with a `script`; `options`: channel,
        interval_seconds, enabled, allow_irreversible, judge_model, turn_timeout_seconds,
        max_turn_latency_ms (see `deputy.domain.probes.ProbeCreate`)."""
        return self._http.run(create_probe(agent_id, name, scenario, options, idempotency_key))

    def list(
        self, *, agent_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[p.Probe]:
        return self._http.run(list_probes(agent_id, limit, cursor))

    def iter_all(
        self, *, agent_id: str | None = None, page_size: int | None = None
    ) -> Iterator[p.Probe]:
        cursor: str | None = None
        while True:
            page = self.list(agent_id=agent_id, limit=page_size, cursor=cursor)
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def get(self, probe_id: str) -> p.Probe:
        return self._http.run(get_probe(probe_id))

    def update(self, probe_id: str, **changes: Any) -> p.Probe:
        """Change the settings given (`judge_model=None` clears it)."""
        return self._http.run(update_probe(probe_id, changes))

    def delete(self, probe_id: str) -> None:
        """Remove the probe and its runs; its firing alert is resolved."""
        self._http.run(delete_probe(probe_id))

    def run(self, probe_id: str) -> p.ProbeRun:
        """Run the probe now; returns the finished run."""
        return self._http.run(run_probe(probe_id))

    def runs(
        self,
        probe_id: str,
        *,
        status: p.ProbeStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[p.ProbeRun]:
        return self._http.run(list_runs(probe_id, status, limit, cursor))

    def iter_runs(
        self, probe_id: str, *, status: p.ProbeStatus | None = None, page_size: int | None = None
    ) -> Iterator[p.ProbeRun]:
        cursor: str | None = None
        while True:
            page = self.runs(probe_id, status=status, limit=page_size, cursor=cursor)
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor


class AsyncProbesAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def create(
        self,
        agent_id: str,
        name: str,
        scenario: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> p.Probe:
        return await self._http.run(
            create_probe(agent_id, name, scenario, options, idempotency_key)
        )

    async def list(
        self, *, agent_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[p.Probe]:
        return await self._http.run(list_probes(agent_id, limit, cursor))

    async def iter_all(
        self, *, agent_id: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[p.Probe]:
        cursor: str | None = None
        while True:
            page = await self.list(agent_id=agent_id, limit=page_size, cursor=cursor)
            for probe in page.data:
                yield probe
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def get(self, probe_id: str) -> p.Probe:
        return await self._http.run(get_probe(probe_id))

    async def update(self, probe_id: str, **changes: Any) -> p.Probe:
        return await self._http.run(update_probe(probe_id, changes))

    async def delete(self, probe_id: str) -> None:
        await self._http.run(delete_probe(probe_id))

    async def run(self, probe_id: str) -> p.ProbeRun:
        return await self._http.run(run_probe(probe_id))

    async def runs(
        self,
        probe_id: str,
        *,
        status: p.ProbeStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[p.ProbeRun]:
        return await self._http.run(list_runs(probe_id, status, limit, cursor))

    async def iter_runs(
        self, probe_id: str, *, status: p.ProbeStatus | None = None, page_size: int | None = None
    ) -> AsyncIterator[p.ProbeRun]:
        cursor: str | None = None
        while True:
            page = await self.runs(probe_id, status=status, limit=page_size, cursor=cursor)
            for run in page.data:
                yield run
            if not page.next_cursor:
                return
            cursor = page.next_cursor
