"""A probe's alert, kept in step with its runs in the run row's transaction.

One alert per probe, keyed `probe:<probe id>` (kind `probe`): a run that is not `passed` opens
it, as a `page` for an `error` (the agent did not answer) and a `ticket` for a `failure` (it
answered wrongly), notifying the workspace's alert targets once; while it fires, further
failing runs update its details and notify no one again. A `page`-worthy run while a `ticket`
fires escalates it: the ticket is resolved and a page opened (so the on-call is paged); a
failure while a page fires keeps the page. The next passing run resolves it, as
`system:probe`."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from deputy.domain.probes import SYSTEM_PROBE
from deputy.services.alerts import (
    SEVERITY_RANK,
    Severity,
    close_alert,
    firing,
    open_alert,
    resolve_alert,
)
from deputy.services.probe_store import ProbeJob
from deputy.store import tables as t


def alert_key(probe_id: str) -> str:
    return f"probe:{probe_id}"


def _details(job: ProbeJob, run: t.ProbeRun) -> dict[str, Any]:
    return {
        "probe_id": job.probe_id,
        "probe_name": job.name,
        "run_id": run.id,
        "status": run.status,
        "reason": run.details.get("reason", ""),
        "channel": job.channel,
        "agent_version": run.agent_version,
        "conversation_id": run.conversation_id,
        "failed_checks": [
            check["detail"] for check in run.details.get("checks", []) if not check["passed"]
        ],
    }


def update_alert(session: Session, job: ProbeJob, run: t.ProbeRun) -> dict[str, Any] | None:
    """Open, escalate, keep or resolve the probe's alert for `run`; what changed (None: no
    alert concerned)."""
    key = alert_key(job.probe_id)
    if run.status == "passed":
        resolved = resolve_alert(session, key, by=SYSTEM_PROBE)
        if resolved is None:
            return None
        return {"id": resolved.id, "change": "resolved", "severity": resolved.severity}
    severity: Severity = "page" if run.status == "error" else "ticket"
    details = _details(job, run)
    change = "opened"
    current = firing(session, key)
    if current is not None and SEVERITY_RANK[current.severity] < SEVERITY_RANK[severity]:
        close_alert(session, current, by=SYSTEM_PROBE)
        details["escalated_from"] = current.id
        change = "escalated"
    alert, opened = open_alert(
        session,
        job.workspace_id,
        key=key,
        kind="probe",
        severity=severity,
        title=f"Probe {job.name!r} {run.status}: {details['reason']}",
        details=details,
        agent_id=job.agent_id,
    )
    return {
        "id": alert.id,
        "change": change if opened else "still_firing",
        "severity": alert.severity,
    }
