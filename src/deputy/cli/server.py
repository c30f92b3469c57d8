"""The commands that run a server process: `deputy serve` and `deputy worker`, and what
`deputy quickstart` (`deputy.cli.quickstart`) shares with them.

They are the only commands that touch the platform directly (to migrate, bootstrap and serve
it); everything else goes through the HTTP API. Server modules are imported inside the
commands so the client commands stay light.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from deputy.cli.output import EXIT_USAGE, fail, out

if TYPE_CHECKING:
    from deputy.api.app import BackgroundJobs
    from deputy.config import Settings
    from deputy.services.platform import Platform
    from deputy.services.workspaces import Bootstrap

HostOption = Annotated[
    str | None,
    typer.Option("--host", help="Interface to listen on (default: DEPUTY_HOST or 127.0.0.1)."),
]
PortOption = Annotated[
    int | None,
    typer.Option(
        "--port", min=1, max=65535, help="Port to listen on (default: DEPUTY_PORT or 8750)."
    ),
]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def build_jobs(platform: Platform) -> BackgroundJobs | None:
    """The durable background-jobs runner the API starts and stops with itself (in process:
    the embedded default), or None when DEPUTY_JOBS_ENABLED=false (jobs run in workers)."""
    if not platform.settings.jobs_enabled:
        return None
    from deputy.jobs.dbos_runner import DbosJobRunner

    return DbosJobRunner.from_settings(platform.settings, platform.db)


def load_server_settings(host: str | None, port: int | None, **overrides: Any) -> Settings:
    """Settings from the environment, with the command line's host and port when given."""
    from deputy.config import ConfigError, load_settings

    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        raise fail(f"invalid configuration: {exc}", EXIT_USAGE) from exc


def public_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - displaying, not binding
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def configure_server_logging(settings: Settings, level: str | None = None) -> None:
    from deputy.observability.logging import configure_logging

    configure_logging(level or settings.log_level, json_lines=settings.log_json)


def print_bootstrap(bootstrap: Bootstrap, url: str) -> None:
    """The owner key on first start (shown this once), or how to get a key otherwise."""
    console = out()
    created = bootstrap.created
    if created is None:
        console.print(
            "This platform was set up before: its owner key was shown on first start and is "
            "not shown again.\n"
            f"Log in with it:     deputy login --url {url} --key <owner key>\n"
            "Make another key:   deputy keys create NAME   (while logged in with a key that "
            "may manage keys)",
            markup=False,
        )
        return
    secret = created.owner_key.secret
    console.print(
        f"Deputy created the first workspace, {created.workspace.name!r}, and its owner key:\n\n"
        f"    {secret}\n\n"
        "This key is shown now and will NOT be shown again: store it somewhere safe.\n"
        "It is the platform operator's key (it can also create workspaces).\n"
        f"Log in with it:  deputy login --url {url} --key {secret}",
        markup=False,
    )


def serve(host: HostOption = None, port: PortOption = None) -> None:
    """Run the API server (data directory from DEPUTY_DATA_DIR)."""
    import uvicorn

    from deputy.api.app import create_app
    from deputy.services.startup import prepare

    settings = load_server_settings(host, port)
    configure_server_logging(settings)
    platform, bootstrap = prepare(settings)
    url = public_url(settings)
    print_bootstrap(bootstrap, url)
    out().print(f"Serving the Deputy API on {url} (docs: {url}/docs)", markup=False)
    try:
        app = create_app(platform, jobs=build_jobs(platform))
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_config=None, access_log=False
        )
        uvicorn.Server(config).run()
    finally:
        platform.close()


def worker(
    modules: Annotated[
        list[str] | None, typer.Option("--import", help="A module that defines jobs (repeatable).")
    ] = None,
    drain_seconds: Annotated[
        int, typer.Option("--drain-seconds", min=0, help="On SIGTERM, give running jobs this long.")
    ] = 0,
) -> None:
    """Run a durable-jobs worker (DEPUTY_EXECUTOR_ID names it; one id per process)."""
    from deputy.jobs.worker import run_worker

    settings = load_server_settings(None, None, process_role="worker")
    configure_server_logging(settings)
    run_worker(settings, modules or [], drain_seconds=drain_seconds)


START_TIMEOUT = 180.0  # a first start on a busy 2-core machine compiles and migrates


class BackgroundServer:
    """Uvicorn on a helper thread, so the main thread can drive the API while it serves."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="deputy-server", daemon=True)

    def _serve(self) -> None:
        try:
            self._server.run()
        except SystemExit:  # uvicorn could not start (it logged why); `start` reports it
            return

    def start(self, timeout: float = START_TIMEOUT) -> str | None:
        """Start serving; why it did not come up (the port is taken, or startup took longer
        than `timeout` seconds), or None once it serves."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self.stop()
                return "it stopped at once: is the port in use (another Deputy?)"
            if time.monotonic() > deadline:
                self.stop()
                return f"it was not serving after {timeout:.0f} s (a very busy machine?)"
            time.sleep(0.05)
        return None

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C or SIGTERM)."""
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
            self._server.should_exit = True

        signal.signal(signal.SIGTERM, on_sigterm)
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            out().print("\nStopping…", markup=False)
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.stop()

    def stop(self, timeout: float = 15.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
