"""The jobs port without an engine: registry, run requests, queue specs, statuses, and running a
job function with the inline context."""

from __future__ import annotations

import pytest

from deputy.jobs import (
    FINISHED_STATES,
    JobContext,
    JobRegistry,
    QueueSpec,
    RunHandle,
    RunStatus,
    UnknownJob,
)
from deputy.jobs.inline import InlineJobContext
from deputy.jobs.port import JobRunner


def _double(value: int) -> int:
    return value * 2


def test_job_decorator_registers_a_named_job_and_builds_run_requests() -> None:
    registry = JobRegistry()

    @registry.job("double-then-add")
    def double_then_add(ctx: JobContext, value: int, *, add: int = 0) -> int:
        return ctx.step("double", _double, value) + add

    assert double_then_add.name == "double-then-add"
    assert registry.get("double-then-add") is double_then_add
    assert registry.jobs() == [double_then_add]
    call = double_then_add.call(4, add=1)
    assert (call.job, call.args, dict(call.kwargs)) == ("double-then-add", (4,), {"add": 1})


def test_a_job_runs_directly_with_the_inline_context() -> None:
    registry = JobRegistry()

    @registry.job("approve")
    def approve(ctx: JobContext, value: int) -> dict[str, object]:
        doubled = ctx.step("double", _double, value)
        ctx.sleep(5.0)
        decision = ctx.recv("decision", timeout=60.0)
        ctx.send("other-run", "done", {"run": ctx.run_id})
        return {"doubled": doubled, "decision": decision, "late": ctx.recv("decision", 1.0)}

    ctx = InlineJobContext("run-7", inbox={"decision": ["yes"]})
    assert approve(ctx, 21) == {"doubled": 42, "decision": "yes", "late": None}
    assert ctx.steps == ["double"]
    assert ctx.slept == [5.0]
    assert ctx.sent == [("other-run", "done", {"run": "run-7"})]


def test_a_name_is_registered_once() -> None:
    registry = JobRegistry()

    @registry.job("once")
    def first(ctx: JobContext) -> None:
        return None

    with pytest.raises(ValueError, match="already registered"):

        @registry.job("once")
        def second(ctx: JobContext) -> None:
            return None

    # Re-importing the same module (same function source) is not a conflict.
    assert registry.job("once")(first.fn).fn is first.fn


@pytest.mark.parametrize("name", ["", "has space", "-leading", "x" * 121, "_dbos_internal"])
def test_job_and_queue_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="name"):
        JobRegistry().job(name)
    with pytest.raises(ValueError, match="name"):
        QueueSpec(name)


def test_unknown_job_is_an_invalid_request() -> None:
    with pytest.raises(UnknownJob) as caught:
        JobRegistry().get("missing")
    assert caught.value.code == "invalid_request"


def test_queue_limits_are_checked() -> None:
    registry = JobRegistry()
    spec = registry.queue("ingest", concurrency=4, worker_concurrency=2)
    assert registry.queues() == [spec]
    assert registry.queue("ingest", concurrency=4, worker_concurrency=2) == spec
    with pytest.raises(ValueError, match="already defined"):
        registry.queue("ingest", concurrency=1)
    with pytest.raises(ValueError, match="at least 1"):
        QueueSpec("q", concurrency=0)
    with pytest.raises(ValueError, match="exceeds"):
        QueueSpec("q", concurrency=1, worker_concurrency=2)


def test_run_status_knows_when_a_run_is_finished() -> None:
    assert not RunStatus("r", "j", "pending").finished
    assert not RunStatus("r", "j", "enqueued").finished
    for state in FINISHED_STATES:
        assert RunStatus("r", "j", state).finished
    assert {"success", "error", "cancelled", "max_recovery_attempts_exceeded"} == FINISHED_STATES


def test_handles_are_plain_values() -> None:
    assert RunHandle[int]("r-1") == RunHandle[object]("r-1")


def test_the_dbos_runner_and_client_implement_the_port() -> None:
    from deputy.jobs.dbos_client import DbosJobClient
    from deputy.jobs.dbos_runner import DbosJobRunner
    from deputy.jobs.port import JobClient

    runner: type[JobRunner] = DbosJobRunner
    client: type[JobClient] = DbosJobClient
    assert runner is DbosJobRunner and client is DbosJobClient
