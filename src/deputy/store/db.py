"""Engines and sessions. SQLite runs in WAL mode with foreign keys on; PostgreSQL via psycopg 3.

Tenant scoping lives here, once: a session opened with `Database.tenant_session(workspace_id)`
adds `workspace_id = :id` to every ORM SELECT, UPDATE and DELETE on a `TenantOwned` table, and
refuses to flush a tenant row that belongs to another workspace.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria

from deputy.store.tables import TenantOwned

WORKSPACE_KEY = "workspace_id"
T = TypeVar("T")


def sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:":
        return None
    return Path(url[len(prefix) :])


def enable_sqlite_wal(path: Path) -> None:
    """Put a SQLite file in WAL mode (persistent) before any other library opens it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            enable_sqlite_wal(path)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class TenantViolation(RuntimeError):
    """A tenant-scoped session tried to write a row of another workspace (a programming error)."""


def _scope_queries(state: ORMExecuteState) -> None:
    workspace_id = state.session.info.get(WORKSPACE_KEY)
    if workspace_id is None or state.is_column_load or state.is_relationship_load:
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(
            with_loader_criteria(
                TenantOwned,
                lambda cls: cls.workspace_id == workspace_id,
                include_aliases=True,
                track_closure_variables=False,
            )
        )


def _check_writes(session: Session, _context: Any, _instances: Any) -> None:
    workspace_id = session.info.get(WORKSPACE_KEY)
    if workspace_id is None:
        return
    for obj in (*session.new, *session.dirty):
        if isinstance(obj, TenantOwned) and obj.workspace_id != workspace_id:
            raise TenantViolation(
                f"{type(obj).__name__} of workspace {obj.workspace_id} written from {workspace_id}"
            )


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self._sessions, "do_orm_execute", _scope_queries)
        event.listen(self._sessions, "before_flush", _check_writes)
        # SQLite takes one writer at a time: this process's async work runs on one thread, so
        # its transactions queue here instead of sleeping in SQLite's busy handler.
        self._sqlite_thread = (
            ThreadPoolExecutor(1, thread_name_prefix="deputy-sqlite") if self.is_sqlite else None
        )
        self._in_flight = 0
        self._idle = threading.Condition()

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """Blocking database work from async code, off the event loop: on SQLite in this
        database's own thread (one writer at a time), on PostgreSQL in the worker pool. Work
        whose caller was cancelled still finishes in its thread (on SQLite, work still queued
        is dropped); `dispose` waits for what runs."""

        def finished() -> None:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

        def tracked() -> T:
            try:
                return work(*args)
            finally:
                finished()

        with self._idle:
            self._in_flight += 1
        if self._sqlite_thread is None:
            # In a task of its own: a cancelled caller must not drop the work while it waits
            # for a worker thread (it would stay counted in flight, never run).
            work_task = asyncio.ensure_future(anyio.to_thread.run_sync(tracked))
            return await asyncio.shield(work_task)
        future = self._sqlite_thread.submit(tracked)
        # A caller cancelled while its work still waits in the queue cancels the work: it never
        # runs, so it is no longer in flight.
        future.add_done_callback(lambda done: finished() if done.cancelled() else None)
        return await asyncio.wrap_future(future)

    @property
    def in_flight(self) -> int:
        """Calls of `run` whose work has not finished (or been dropped) yet."""
        with self._idle:
            return self._in_flight

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """An unscoped session, for platform-level work (authentication, bootstrap, jobs)."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def tenant_session(self, workspace_id: str) -> Iterator[Session]:
        """A session that can only see and write rows of `workspace_id`."""
        with self._sessions(info={WORKSPACE_KEY: workspace_id}) as session, session.begin():
            yield session

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self, wait_seconds: float = 10.0) -> None:
        """Close every connection. Work still running in a thread (see `run`) is waited for
        first: a connection it returned to a disposed pool would never be closed."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=wait_seconds)
        if self._sqlite_thread is not None:
            self._sqlite_thread.shutdown(wait=True)
        self.engine.dispose()
