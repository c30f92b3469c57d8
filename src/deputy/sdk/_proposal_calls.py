"""The proposal and audit operations of the API, as `Call`s (see `deputy.sdk._calls`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deputy.domain import lifecycle as lc
from deputy.domain import resources as r
from deputy.sdk._calls import Call, _list_params, _model, _page, _post, _seg

PROPOSALS = "/v1/proposals"
AUDIT = "/v1/audit"


def _proposal(proposal_id: str) -> str:
    return f"{PROPOSALS}/{_seg(proposal_id)}"


def create_proposal(
    agent_id: str,
    version: int,
    title: str,
    *,
    rationale: str,
    base_version: int | None,
    sandbox_run_id: str | None,
    baseline_run_id: str | None,
    conversation_ids: Sequence[str],
    regression_scenario_ids: Sequence[str],
    idempotency_key: str | None,
) -> Call[lc.Proposal]:
    body: dict[str, Any] = {
        "agent_id": agent_id,
        "version": version,
        "title": title,
        "rationale": rationale,
        "conversation_ids": list(conversation_ids),
        "regression_scenario_ids": list(regression_scenario_ids),
    }
    optional = (
        ("base_version", base_version),
        ("sandbox_run_id", sandbox_run_id),
        ("baseline_run_id", baseline_run_id),
    )
    body.update({field: value for field, value in optional if value is not None})
    return _post(PROPOSALS, _model(lc.Proposal), body, idempotency_key)


def get_proposal(proposal_id: str) -> Call[lc.Proposal]:
    return Call("GET", _proposal(proposal_id), _model(lc.Proposal))


def list_proposals(
    agent_id: str | None,
    status: lc.ProposalStatus | None,
    limit: int | None,
    cursor: str | None,
) -> Call[r.Page[lc.Proposal]]:
    params = _list_params(limit, cursor)
    if agent_id is not None:
        params["agent_id"] = agent_id
    if status is not None:
        params["status"] = status
    return Call("GET", PROPOSALS, _page(lc.Proposal), params=params)


def review(
    proposal_id: str, kind: lc.ReviewKind, body: str, idempotency_key: str | None
) -> Call[lc.Review]:
    payload = {"kind": kind, "body": body}
    return _post(f"{_proposal(proposal_id)}/reviews", _model(lc.Review), payload, idempotency_key)


def list_reviews(
    proposal_id: str, limit: int | None, cursor: str | None
) -> Call[r.Page[lc.Review]]:
    params = _list_params(limit, cursor)
    return Call("GET", f"{_proposal(proposal_id)}/reviews", _page(lc.Review), params=params)


def list_audit(
    action: lc.AuditAction | None, subject_id: str | None, limit: int | None, cursor: str | None
) -> Call[r.Page[lc.AuditEntry]]:
    params = _list_params(limit, cursor)
    if action is not None:
        params["action"] = action
    if subject_id is not None:
        params["subject_id"] = subject_id
    return Call("GET", AUDIT, _page(lc.AuditEntry), params=params)


def verify_audit() -> Call[lc.AuditVerification]:
    return Call("GET", f"{AUDIT}/verify", _model(lc.AuditVerification))
