"""The jobs runner on DBOS: runs jobs in this process, on SQLite (embedded) or PostgreSQL.

DBOS is a process-wide singleton, so at most one runner is started per process. `start()`
registers the jobs of the registry as DBOS workflows, launches DBOS (which resumes the runs this
executor id left unfinished), registers the queues, and starts the heartbeat through which a live
worker takes over the runs of a dead one (`deputy.jobs.heartbeat`). `stop()` tears all of it
down; runs still in flight are resumed by the next worker with this executor id, or by another
worker once this one's heartbeat is older than `dead_after_seconds`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from dbos import DBOS, DBOSConfig, SetWorkflowID
from dbos._error import DBOSConflictingWorkflowError

from deputy.jobs._dbos_common import (
    APP_NAME,
    JOBS_APP_VERSION,
    off_event_loop,
    prepare_jobs_database,
    probe,
    queue_name,
    refuse_event_loop,
    to_run_status,
    wait_for_result,
)
from deputy.jobs.errors import JobsUnavailable, RunConflict, RunNotFound, UnknownJob
from deputy.jobs.heartbeat import ExecutorLiveness
from deputy.jobs.port import (
    Job,
    JobCall,
    JobContext,
    JobRegistry,
    JsonValue,
    QueueSpec,
    RunHandle,
    RunStatus,
    default_registry,
)
from deputy.store.db import Database

if TYPE_CHECKING:
    from deputy.config import Settings

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

_active_lock = threading.Lock()
_active: DbosJobRunner | None = None


class DbosJobContext:
    """`JobContext` on DBOS: every call goes to the workflow that runs on this thread."""

    @property
    def run_id(self) -> str:
        run_id = DBOS.workflow_id
        if run_id is None:
            raise RuntimeError("JobContext used outside a running job")
        return run_id

    def step(self, name: str, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return DBOS.run_step({"name": name}, fn, *args, **kwargs)

    def sleep(self, seconds: float) -> None:
        DBOS.sleep(seconds)

    def recv(self, topic: str, timeout: float) -> JsonValue | None:
        return cast(JsonValue | None, DBOS.recv(topic, timeout_seconds=timeout))

    def send(self, run_id: str, topic: str, message: JsonValue) -> None:
        DBOS.send(run_id, message, topic)


def _as_workflow(defined: Job[Any, Any], context: JobContext) -> Callable[..., Any]:
    fn = defined.fn

    def run(*args: Any, **kwargs: Any) -> Any:
        return fn(context, *args, **kwargs)

    run.__name__ = run.__qualname__ = defined.name
    run.__module__ = getattr(fn, "__module__", __name__)
    return run


def _run_id(run_id: str | None) -> AbstractContextManager[object]:
    return SetWorkflowID(run_id) if run_id is not None else nullcontext()


class DbosJobRunner:
    def __init__(
        self,
        database: Database,
        *,
        jobs_database_url: str,
        executor_id: str,
        registry: JobRegistry = default_registry,
        heartbeat_seconds: float = 2.0,
        dead_after_seconds: float = 10.0,
        poll_seconds: float = 1.0,
        app_version: str = JOBS_APP_VERSION,
        log_level: str = "INFO",
    ) -> None:
        """`database`: the main Deputy database (holds the `job_workers` heartbeats, schema
        applied). `jobs_database_url`: the DBOS system database. `poll_seconds`: how often
        queues and signals are polled."""
        self.jobs_database_url = jobs_database_url
        self.executor_id = executor_id
        self.registry = registry
        self.app_version = app_version
        self.poll_seconds = poll_seconds
        self.log_level = log_level
        self._context = DbosJobContext()
        self._workflows: dict[str, Callable[..., Any]] = {}
        self._started = False
        self.liveness = ExecutorLiveness(
            database,
            executor_id,
            heartbeat_seconds=heartbeat_seconds,
            dead_after_seconds=dead_after_seconds,
            recover=self._recover_executor,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, database: Database, *, registry: JobRegistry = default_registry
    ) -> DbosJobRunner:
        return cls(
            database,
            jobs_database_url=settings.resolved_jobs_database_url,
            executor_id=settings.resolved_executor_id,
            registry=registry,
            heartbeat_seconds=settings.worker_heartbeat_seconds,
            dead_after_seconds=settings.worker_dead_after_seconds,
            log_level=settings.log_level,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Launch in this process (also from an async lifespan: the work is moved off the loop)."""
        off_event_loop(self._start)

    def _start(self) -> None:
        global _active
        with _active_lock:
            if _active is not None:
                raise RuntimeError("a DBOS jobs runner is already started in this process")
            _active = self
        try:
            prepare_jobs_database(self.jobs_database_url)
            # Registered before launch: a restarted worker must not race a rescuer.
            self.liveness.register()
            self._launch()
            self.liveness.start()
        except BaseException:
            self._teardown()
            raise
        self._started = True
        log.info("jobs runner started as executor %s", self.executor_id)

    def _launch(self) -> None:
        self._workflows = {
            defined.name: DBOS.workflow(name=defined.name)(_as_workflow(defined, self._context))
            for defined in self.registry.jobs()
        }
        config: DBOSConfig = {
            "name": APP_NAME,
            "system_database_url": self.jobs_database_url,
            "application_version": self.app_version,
            "executor_id": self.executor_id,
            "log_level": self.log_level,
            "notification_listener_polling_interval_sec": self.poll_seconds,
        }
        DBOS(config=config)
        DBOS.launch()
        for spec in self.registry.queues():
            DBOS.register_queue(
                spec.name,
                global_concurrency=spec.concurrency,
                worker_concurrency=spec.worker_concurrency,
                polling_interval_sec=self.poll_seconds,
            )

    def stop(self, *, drain_seconds: int = 0) -> None:
        """Stop running jobs here; with `drain_seconds`, first give running jobs that long."""
        if not self._started:
            return
        self._started = False
        off_event_loop(lambda: self._teardown(drain_seconds))
        log.info("jobs runner of executor %s stopped", self.executor_id)

    def _teardown(self, drain_seconds: int = 0) -> None:
        global _active
        self.liveness.stop()
        DBOS.destroy(destroy_registry=True, workflow_completion_timeout_sec=drain_seconds)
        self._workflows = {}
        with _active_lock:
            if _active is self:
                _active = None

    def ping(self) -> None:
        if not self._started:
            raise JobsUnavailable("the jobs runner is not started")
        probe(self.jobs_database_url)
        if not self.liveness.healthy():
            raise JobsUnavailable(f"the heartbeat of executor {self.executor_id} is not current")

    def _recover_executor(self, executor_id: str) -> int:
        return len(DBOS._recover_pending_workflows([executor_id]))

    # -- runs ------------------------------------------------------------------------------

    def _workflow(self, name: str, operation: str) -> Callable[..., Any]:
        self._require_started(operation)
        try:
            return self._workflows[name]
        except KeyError:
            raise UnknownJob(name) from None

    def start_run(self, call: JobCall[R], *, run_id: str | None = None) -> RunHandle[R]:
        workflow = self._workflow(call.job, "start_run")
        try:
            with _run_id(run_id):
                handle = DBOS.start_workflow(workflow, *call.args, **call.kwargs)
        except DBOSConflictingWorkflowError as exc:
            raise RunConflict(str(exc), details={"run_id": run_id}) from exc
        return RunHandle(handle.get_workflow_id())

    def enqueue(
        self, queue: str | QueueSpec, call: JobCall[R], *, run_id: str | None = None
    ) -> RunHandle[R]:
        workflow = self._workflow(call.job, "enqueue")
        try:
            with _run_id(run_id):
                handle = DBOS.enqueue_workflow(
                    queue_name(queue), workflow, *call.args, **call.kwargs
                )
        except DBOSConflictingWorkflowError as exc:
            raise RunConflict(str(exc), details={"run_id": run_id}) from exc
        return RunHandle(handle.get_workflow_id())

    def send(self, run_id: str, topic: str, message: JsonValue) -> None:
        self._require_started("send")
        DBOS.send(run_id, message, topic)

    def _read_status(self, run_id: str) -> RunStatus | None:
        found = DBOS.list_workflows(workflow_ids=[run_id], load_input=False)
        return to_run_status(found[0]) if found else None

    def status(self, run_id: str) -> RunStatus:
        self._require_started("status")
        status = self._read_status(run_id)
        if status is None:
            raise RunNotFound(run_id)
        return status

    def result(self, run: RunHandle[R], *, timeout: float) -> R:
        self._require_started("result")
        run_id = run.run_id
        value = wait_for_result(
            run_id,
            timeout,
            lambda: self._read_status(run_id),
            lambda: DBOS.retrieve_workflow(run_id).get_result(),
        )
        return cast(R, value)

    def cancel(self, run_id: str) -> None:
        self._require_started("cancel")
        DBOS.cancel_workflow(run_id)

    def _require_started(self, operation: str) -> None:
        refuse_event_loop(operation)
        if not self._started:
            raise JobsUnavailable("the jobs runner is not started")


if TYPE_CHECKING:  # mypy checks that the classes satisfy the port
    from deputy.jobs.port import JobRunner

    _runner: type[JobRunner] = DbosJobRunner
    _context: type[JobContext] = DbosJobContext
