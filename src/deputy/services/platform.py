"""What every service function needs: settings, the database, blob storage, durable jobs."""

from __future__ import annotations

from dataclasses import dataclass

from deputy.config import Settings
from deputy.store.blobs import BlobStore
from deputy.store.db import Database


@dataclass(frozen=True)
class Platform:
    settings: Settings
    db: Database
    blobs: BlobStore

    @classmethod
    def open(cls, settings: Settings) -> Platform:
        settings.ensure_dirs()
        return cls(
            settings=settings,
            db=Database(settings.resolved_database_url),
            blobs=BlobStore(settings.materials_dir),
        )

    def close(self) -> None:
        self.db.dispose()
