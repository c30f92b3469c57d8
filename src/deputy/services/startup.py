"""Bring a platform up: directories, schema migrations, first-start bootstrap."""

from __future__ import annotations

from deputy.config import Settings
from deputy.services.platform import Platform
from deputy.services.workspaces import Bootstrap, bootstrap
from deputy.store.migrate import upgrade


def prepare(settings: Settings) -> tuple[Platform, Bootstrap]:
    """Open the platform, migrate its database to the current schema and bootstrap it once."""
    platform = Platform.open(settings)
    settings.secret_key_value()  # fail early (and create the development key) before serving
    upgrade(platform.db.engine)
    return platform, bootstrap(platform)
