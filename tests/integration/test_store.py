"""The schema, migrations and the tenant-scoped session on the real backend."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text, update

from deputy.store import tables as t
from deputy.store.db import Database, TenantViolation
from deputy.store.migrate import current_revision, head_revision, upgrade


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    upgrade(database.engine)
    yield database
    database.dispose()


def test_migrations_build_exactly_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), t.Base.metadata) == []
    assert current_revision(db.engine) == head_revision()
    upgrade(db.engine)  # idempotent on every start
    assert current_revision(db.engine) == head_revision()


def test_upgrading_keeps_existing_rows(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database.engine, "0001")
        with database.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO workspaces (id, name, created_at) VALUES ('ws_1', 'Old', :now)"),
                {"now": "2026-01-01 00:00:00"},
            )
        upgrade(database.engine)
        with database.session() as session:
            workspace = session.get(t.Workspace, "ws_1")
            assert workspace is not None
            assert workspace.name == "Old"
            assert workspace.default_model is None
    finally:
        database.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite pragmas")
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def _two_workspaces(db: Database) -> None:
    with db.session() as session:
        for ws in ("ws_A", "ws_B"):
            session.add(t.Workspace(id=ws, name=ws))
        session.flush()
        for ws in ("ws_A", "ws_B"):
            session.add(
                t.Agent(id=f"agt_{ws}", workspace_id=ws, name="same-name", latest_version=0)
            )


def test_tenant_session_sees_and_changes_only_its_workspace(db: Database) -> None:
    _two_workspaces(db)
    with db.tenant_session("ws_A") as session:
        assert session.scalars(select(t.Agent.id)).all() == ["agt_ws_A"]
        assert session.get(t.Agent, "agt_ws_B") is None
        rows = session.scalars(select(t.Agent).where(t.Agent.id == "agt_ws_B")).all()
        assert rows == []
        # bulk statements are scoped too
        session.execute(update(t.Agent).values(description="touched"))
    with db.session() as session:
        descriptions = dict(session.execute(select(t.Agent.id, t.Agent.description)).all())
    assert descriptions == {"agt_ws_A": "touched", "agt_ws_B": ""}


def test_tenant_session_refuses_to_write_another_workspace_row(db: Database) -> None:
    _two_workspaces(db)
    with pytest.raises(TenantViolation), db.tenant_session("ws_A") as session:
        session.add(t.Agent(id="agt_evil", workspace_id="ws_B", name="evil", latest_version=0))
    with db.session() as session:
        assert session.get(t.Agent, "agt_evil") is None


def test_work_cancelled_before_it_starts_is_no_longer_in_flight(db: Database) -> None:
    """A caller cancelled while its work waits for a thread (SQLite: the database's one
    thread; PostgreSQL: the worker pool) leaves nothing counted in flight: `dispose` must not
    wait for work that will never run."""
    started = threading.Event()
    release = threading.Event()

    def slow() -> None:
        started.set()
        release.wait(10)

    async def scenario() -> None:
        first = asyncio.create_task(db.run(slow))
        await asyncio.to_thread(started.wait, 10)
        queued = asyncio.create_task(db.run(lambda: None))
        await asyncio.sleep(0)  # the second call is submitted and waits
        queued.cancel()
        release.set()
        await first
        with contextlib.suppress(asyncio.CancelledError):
            await queued
        for _ in range(200):  # PostgreSQL: the work still runs (or ran) in the pool
            if db.in_flight == 0:
                return
            await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert db.in_flight == 0
