"""Metering that no request triggers: every member's seat for the current month, written at
start and every hour after (so each month's seats exist within its first hour, even in a
workspace where nothing happens)."""

from __future__ import annotations

import asyncio
import logging

from deputy.billing.seats import ensure_seat_events
from deputy.services.platform import Platform
from deputy.store.tables import utcnow

log = logging.getLogger(__name__)

SEAT_SWEEP_SECONDS = 3600.0


async def keep_metering_seats(platform: Platform) -> None:
    """Run the seat sweep for the current month now and hourly until cancelled (errors are
    logged; the next round tries again)."""
    while True:
        try:
            written = await platform.db.run(ensure_seat_events, platform.db, utcnow())
            if written:
                log.info("metered seats", extra={"seats": written})
        except Exception:
            log.exception("metering seats failed")
        await asyncio.sleep(SEAT_SWEEP_SECONDS)
