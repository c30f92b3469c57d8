"""Shared fixtures. The backend under test is chosen by DEPUTY_TEST_BACKEND (sqlite | postgresql);
PostgreSQL tests create a fresh database per test on the server at DEPUTY_TEST_POSTGRES_URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

BACKEND = os.environ.get("DEPUTY_TEST_BACKEND", "sqlite")
POSTGRES_ADMIN_URL = os.environ.get(
    "DEPUTY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:55432/postgres"
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's real config or data directory."""
    for name in list(os.environ):
        if name.startswith("DEPUTY_") and not name.startswith("DEPUTY_TEST_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEPUTY_ENVIRONMENT", "test")
    # Only local models and servers on loopback: a test can never reach a hosted provider.
    monkeypatch.setenv("DEPUTY_BLOCK_REMOTE_MODELS", "1")
    monkeypatch.setenv("DEPUTY_DATA_DIR", str(tmp_path / "data"))


def create_postgres_database() -> str:
    name = f"deputy_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the backend under test."""
    if BACKEND == "postgresql":
        url = create_postgres_database()
        yield url
        drop_postgres_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'deputy.sqlite3'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for tests that only make sense there (several workers
    sharing one database); they run in the PostgreSQL pass of the suite."""
    if BACKEND != "postgresql":
        pytest.skip("PostgreSQL-only: runs in the DEPUTY_TEST_BACKEND=postgresql pass")
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The PostgreSQL pass runs the tests that touch the database under test (those using the
    `database_url` or `postgres_url` fixtures, directly or through others); the rest do not
    depend on the backend and already ran in the SQLite pass."""
    if BACKEND != "postgresql":
        return
    keep, drop = [], []
    for item in items:
        uses_db = {"database_url", "postgres_url"} & set(getattr(item, "fixturenames", ()))
        (keep if uses_db else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
