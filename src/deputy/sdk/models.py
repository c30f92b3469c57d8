"""SDK-side models of answers that are not platform resources (the probes). Resources and
pages are the shared models of `deputy.domain.resources`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Health(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: str


class Readiness(BaseModel):
    """`/readyz`: `status` is `ready` or `not_ready`; `checks` names each dependency's state."""

    model_config = ConfigDict(frozen=True)

    status: Literal["ready", "not_ready"]
    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        return self.status == "ready"
