"""The worker process: import the modules that define jobs, run them until SIGTERM or SIGINT."""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING

from deputy.jobs.port import JobRegistry, default_registry
from deputy.store.db import Database
from deputy.store.migrate import upgrade

if TYPE_CHECKING:
    from deputy.config import Settings

log = logging.getLogger(__name__)

_Handler = Callable[[int, FrameType | None], object] | int | None


def _on_signals(stop: threading.Event) -> Callable[[], None]:
    """Set `stop` on SIGTERM/SIGINT; returns a function that restores the previous handlers.
    Only the main thread may install handlers; elsewhere the caller's `stop` event is the way."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[signal.Signals, _Handler] = {}

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping the worker", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handle)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


def run_worker(
    settings: Settings,
    import_modules: Sequence[str],
    *,
    registry: JobRegistry = default_registry,
    stop: threading.Event | None = None,
    drain_seconds: int = 0,
) -> None:
    """Import `import_modules` (they define jobs and queues in `registry`), bring the main
    database schema up to date, start a DBOS runner with this worker's executor id, and block
    until SIGTERM/SIGINT (or `stop` is set). `drain_seconds`: time given to running jobs on stop;
    whatever is still running then is resumed by the next worker."""
    from deputy.jobs.dbos_runner import DbosJobRunner  # imports DBOS: only when a worker runs

    for name in import_modules:
        importlib.import_module(name)
    stop = stop if stop is not None else threading.Event()
    restore_signals = _on_signals(stop)
    settings.ensure_dirs()
    database = Database(settings.resolved_database_url)
    try:
        upgrade(database.engine)
        runner = DbosJobRunner.from_settings(settings, database, registry=registry)
        runner.start()
        try:
            log.info(
                "worker %s ready: %d jobs, %d queues",
                runner.executor_id,
                len(registry.jobs()),
                len(registry.queues()),
            )
            while not stop.wait(0.5):
                pass
        finally:
            runner.stop(drain_seconds=drain_seconds)
    finally:
        database.dispose()
        restore_signals()
