"""Errors of durable jobs, in the one Deputy hierarchy (`deputy.domain.errors`)."""

from __future__ import annotations

from deputy.domain.errors import Conflict, DeputyError, InvalidRequest, NotFound, Unavailable


class JobsUnavailable(Unavailable):
    """The jobs system is not started, or its database cannot be reached."""


class UnknownJob(InvalidRequest):
    """A run was asked of a job name that no registry (of this runner) defines."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no job named {name!r} is registered", details={"job": name})


class RunNotFound(NotFound):
    def __init__(self, run_id: str) -> None:
        super().__init__("job run", run_id)


class RunConflict(Conflict):
    """A run id is already used by a run of another job."""


class JobFailed(DeputyError):
    """The run ended in error; `error_type` and the message say what the job raised."""

    code = "internal_error"

    def __init__(self, run_id: str, error_type: str, message: str) -> None:
        super().__init__(
            f"job run {run_id!r} failed: {error_type}: {message}",
            details={"run_id": run_id, "error_type": error_type},
        )
        self.run_id = run_id
        self.error_type = error_type


class JobCancelled(Conflict):
    def __init__(self, run_id: str, reason: str = "cancelled") -> None:
        super().__init__(f"job run {run_id!r} {reason}", details={"run_id": run_id})
        self.run_id = run_id


class ResultTimeout(Unavailable):
    """The run did not finish within the time the caller was willing to wait."""

    def __init__(self, run_id: str, timeout: float) -> None:
        super().__init__(
            f"job run {run_id!r} did not finish within {timeout:g} s",
            details={"run_id": run_id, "timeout": timeout},
        )
        self.run_id = run_id
