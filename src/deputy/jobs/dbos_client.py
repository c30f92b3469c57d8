"""A `JobClient` on DBOS that executes nothing: it enqueues runs for workers, sends signals,
reads status and results, and cancels, talking only to the jobs database. For a process that
must not run jobs itself (an API server in front of a pool of workers, the CLI, tests).

The jobs database must already exist: a runner creates it when it starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, cast

from dbos import DBOSClient, EnqueueOptions, WorkflowHandle
from dbos._error import DBOSConflictingWorkflowError

from deputy.jobs._dbos_common import (
    APP_NAME,
    JOBS_APP_VERSION,
    prepare_jobs_database,
    probe,
    queue_name,
    refuse_event_loop,
    to_run_status,
    wait_for_result,
)
from deputy.jobs.errors import JobsUnavailable, RunConflict, RunNotFound
from deputy.jobs.port import JobCall, JsonValue, QueueSpec, RunHandle, RunStatus

R = TypeVar("R")


class DbosJobClient:
    def __init__(self, jobs_database_url: str, *, app_version: str = JOBS_APP_VERSION) -> None:
        self.jobs_database_url = jobs_database_url
        self.app_version = app_version
        prepare_jobs_database(jobs_database_url)
        self._client = DBOSClient(
            system_database_url=jobs_database_url, application_name=APP_NAME, lazy=True
        )
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.destroy()

    def __enter__(self) -> DbosJobClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _check_open(self, operation: str) -> None:
        refuse_event_loop(operation)
        if self._closed:
            raise JobsUnavailable("the jobs client is closed")

    def enqueue(
        self, queue: str | QueueSpec, call: JobCall[R], *, run_id: str | None = None
    ) -> RunHandle[R]:
        self._check_open("enqueue")
        options: EnqueueOptions = {
            "workflow_name": call.job,
            "queue_name": queue_name(queue),
            "app_version": self.app_version,
        }
        if run_id is not None:
            options["workflow_id"] = run_id
        try:
            handle: WorkflowHandle[R] = self._client.enqueue(options, *call.args, **call.kwargs)
        except DBOSConflictingWorkflowError as exc:
            raise RunConflict(str(exc), details={"run_id": run_id}) from exc
        return RunHandle(handle.get_workflow_id())

    def send(self, run_id: str, topic: str, message: JsonValue) -> None:
        self._check_open("send")
        self._client.send(run_id, message, topic)

    def _read_status(self, run_id: str) -> RunStatus | None:
        found = self._client.list_workflows(workflow_ids=[run_id], load_input=False)
        return to_run_status(found[0]) if found else None

    def status(self, run_id: str) -> RunStatus:
        self._check_open("status")
        status = self._read_status(run_id)
        if status is None:
            raise RunNotFound(run_id)
        return status

    def result(self, run: RunHandle[R], *, timeout: float) -> R:
        self._check_open("result")
        run_id = run.run_id
        value = wait_for_result(
            run_id,
            timeout,
            lambda: self._read_status(run_id),
            lambda: self._client.retrieve_workflow(run_id).get_result(),
        )
        return cast(R, value)

    def cancel(self, run_id: str) -> None:
        self._check_open("cancel")
        self._client.cancel_workflow(run_id)

    def ping(self) -> None:
        if self._closed:
            raise JobsUnavailable("the jobs client is closed")
        probe(self.jobs_database_url)


if TYPE_CHECKING:  # mypy checks that the class satisfies the port
    from deputy.jobs.port import JobClient

    _client: type[JobClient] = DbosJobClient
