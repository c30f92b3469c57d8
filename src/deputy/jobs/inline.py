"""`InlineJobContext`: run a job function directly, without the engine, for unit tests of jobs.

Steps run at once and are recorded by name; sleeps are recorded, not slept; `recv` answers from
a prepared mailbox; `send` is recorded. Nothing is durable.

    ctx = InlineJobContext("run-1", inbox={"approval": [True]})
    assert ingest(ctx, "doc-1") == 3
    assert ctx.steps == ["parse", "index"]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from deputy.jobs.port import JsonValue

P = ParamSpec("P")
R = TypeVar("R")


class InlineJobContext:
    def __init__(
        self, run_id: str = "inline-run", *, inbox: Mapping[str, Sequence[JsonValue]] | None = None
    ) -> None:
        self._run_id = run_id
        self._inbox: dict[str, list[JsonValue]] = {
            topic: list(messages) for topic, messages in (inbox or {}).items()
        }
        self.steps: list[str] = []
        self.slept: list[float] = []
        self.sent: list[tuple[str, str, JsonValue]] = []

    @property
    def run_id(self) -> str:
        return self._run_id

    def step(self, name: str, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        self.steps.append(name)
        return fn(*args, **kwargs)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def recv(self, topic: str, timeout: float) -> JsonValue | None:
        messages = self._inbox.get(topic)
        return messages.pop(0) if messages else None

    def send(self, run_id: str, topic: str, message: JsonValue) -> None:
        self.sent.append((run_id, topic, message))


if TYPE_CHECKING:  # mypy checks that the class satisfies the port
    from deputy.jobs.port import JobContext

    _context: type[JobContext] = InlineJobContext
