"""The probe scheduler, one per server process: every few seconds it leases the enabled probes
that are due (across workspaces; `deputy.services.probe_store.claim_due`), at most
`DEPUTY_PROBE_CONCURRENCY` running at once in this process, and runs each
(`deputy.services.probe_runner.run_probe`), which records the run, its alert, and the probe's
next run (`interval_seconds` after this one ended).

Several processes may run it on one database: a probe is leased by one of them at a time, and a
probe whose process died is taken by another once its lease expires (it is still due). A probe
of an agent without a deployment on its channel is not skipped: it records an `error` run
saying so, and alerts, since a probe exists to watch a deployment that should be there."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid

from deputy.services.leased_jobs import stop_tasks
from deputy.services.platform import Platform
from deputy.services.probe_runner import run_probe
from deputy.services.probe_store import ProbeJob, claim_due

log = logging.getLogger("deputy.probes")

POLL_SECONDS = 5.0
"""How often due probes are looked for (at most the shortest interval allowed)."""


async def _run(platform: Platform, job: ProbeJob) -> None:
    try:
        run = await run_probe(platform, job)
    except Exception:
        log.exception("a probe could not run", extra={"probe_id": job.probe_id})
        return
    if run is not None:
        log.info(
            "probe run",
            extra={"probe_id": job.probe_id, "run_id": run.id, "status": run.status},
        )


async def keep_running_probes(platform: Platform) -> None:
    """Run due probes for as long as the process runs (errors are logged; the next round tries
    again). Cancelled at shutdown with the runs it started: their leases are released."""
    settings = platform.settings
    owner = f"{os.getpid()}:{uuid.uuid4().hex}"
    poll = min(POLL_SECONDS, float(settings.probe_min_interval_seconds))
    running: set[asyncio.Task[None]] = set()
    try:
        while True:
            free = settings.probe_concurrency - len(running)
            if free > 0:
                try:
                    claimed = await platform.db.run(claim_due, platform.db, owner, free)
                except Exception:
                    log.exception("could not look for due probes")
                    claimed = []
                for job in claimed:
                    task = asyncio.create_task(_run(platform, job))
                    running.add(task)
                    task.add_done_callback(running.discard)
            await asyncio.sleep(poll)
    finally:
        await stop_tasks(*running)
