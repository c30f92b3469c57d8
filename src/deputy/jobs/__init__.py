"""Durable background work. Import the port from here; it does not import the engine (DBOS).

The engine lives in `deputy.jobs.dbos_runner.DbosJobRunner` (runs jobs in this process),
`deputy.jobs.dbos_client.DbosJobClient` (submits and observes runs only) and
`deputy.jobs.worker.run_worker` (the worker process).
"""

from deputy.jobs.errors import (
    JobCancelled,
    JobFailed,
    JobsUnavailable,
    ResultTimeout,
    RunConflict,
    RunNotFound,
    UnknownJob,
)
from deputy.jobs.port import (
    FINISHED_STATES,
    Job,
    JobCall,
    JobClient,
    JobContext,
    JobRegistry,
    JobRunner,
    JsonValue,
    QueueSpec,
    RunHandle,
    RunState,
    RunStatus,
    default_registry,
    define_queue,
    job,
)

__all__ = [
    "FINISHED_STATES",
    "Job",
    "JobCall",
    "JobCancelled",
    "JobClient",
    "JobContext",
    "JobFailed",
    "JobRegistry",
    "JobRunner",
    "JobsUnavailable",
    "JsonValue",
    "QueueSpec",
    "ResultTimeout",
    "RunConflict",
    "RunHandle",
    "RunNotFound",
    "RunState",
    "RunStatus",
    "UnknownJob",
    "default_registry",
    "define_queue",
    "job",
]
