"""Persistence: SQLAlchemy 2 tables, Alembic migrations, tenant-scoped sessions."""
