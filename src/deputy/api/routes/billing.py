"""Billing: plans (the workspace's and each agent's), budgets with alerts and an optional hard
stop, invoices (previewed, issued, as JSON or HTML, each line traceable to its usage events)
and disputes that reverse an outcome's charge. The logic is in `deputy.services`:
`billing_plans`, `budgets`, `invoices`, `disputes`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.responses import HTMLResponse

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.domain import resources as r
from deputy.domain.budgets import Budget, BudgetSet
from deputy.domain.disputes import Dispute, DisputeDecision, DisputeOpen, DisputeStatus
from deputy.domain.pricing import (
    PERIOD_PATTERN,
    BillingPlan,
    EffectivePlan,
    Invoice,
    InvoiceIssue,
    InvoiceSummary,
    Plan,
)
from deputy.domain.usage import UsageEventInfo
from deputy.services import billing_plans, budgets, disputes, invoices

router = APIRouter(prefix="/billing", tags=["billing"])

AgentId = Annotated[str, Path(max_length=64, description="An agent id.")]
AgentQuery = Annotated[
    str | None, Query(max_length=64, description="One agent's; default: the workspace's.")
]
PeriodQuery = Annotated[
    str | None, Query(pattern=PERIOD_PATTERN, description="YYYY-MM; default: this month (UTC).")
]
LineNumber = Annotated[int, Path(ge=1, le=10_000, description="The line's number, from 1.")]
_HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "A printable, self-contained page"}
}


# ---- plans ----------------------------------------------------------------------------------


@router.put("/plan", response_model=BillingPlan)
def set_workspace_plan(body: Plan, platform: PlatformDep, principal: PrincipalDep) -> BillingPlan:
    """Set the workspace plan: it prices seats, and the agents without a plan of their own or
    in their live spec."""
    return billing_plans.set_plan(platform, principal, None, body)


@router.get("/plan", response_model=BillingPlan)
def get_workspace_plan(platform: PlatformDep, principal: PrincipalDep) -> BillingPlan:
    return billing_plans.get_plan(platform, principal, None)


@router.delete("/plan", status_code=status.HTTP_204_NO_CONTENT)
def remove_workspace_plan(platform: PlatformDep, principal: PrincipalDep) -> None:
    billing_plans.remove_plan(platform, principal, None)


@router.get("/plans", response_model=r.Page[EffectivePlan])
def list_effective_plans(
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[EffectivePlan]:
    """Each agent's effective plan and its source: `agent` (set here), `spec` (the live
    spec's `outcomes.billing`), `workspace`, or `none`."""
    return billing_plans.effective_plans(platform, principal, limit=limit, cursor=cursor)


@router.put("/plans/{agent_id}", response_model=BillingPlan)
def set_agent_plan(
    agent_id: AgentId, body: Plan, platform: PlatformDep, principal: PrincipalDep
) -> BillingPlan:
    """Set an agent's own plan (it wins over its spec's and the workspace's)."""
    return billing_plans.set_plan(platform, principal, agent_id, body)


@router.get("/plans/{agent_id}", response_model=BillingPlan)
def get_agent_plan(
    agent_id: AgentId, platform: PlatformDep, principal: PrincipalDep
) -> BillingPlan:
    return billing_plans.get_plan(platform, principal, agent_id)


@router.delete("/plans/{agent_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_agent_plan(agent_id: AgentId, platform: PlatformDep, principal: PrincipalDep) -> None:
    billing_plans.remove_plan(platform, principal, agent_id)


# ---- budgets --------------------------------------------------------------------------------


@router.put("/budget", response_model=Budget)
def set_workspace_budget(body: BudgetSet, platform: PlatformDep, principal: PrincipalDep) -> Budget:
    """Set the workspace's monthly budget (every agent's spend and the seats)."""
    return budgets.set_budget(platform, principal, None, body)


@router.get("/budget", response_model=Budget)
def get_workspace_budget(platform: PlatformDep, principal: PrincipalDep) -> Budget:
    """The budget with this month's spend (`burn`)."""
    return budgets.get_budget(platform, principal, None)


@router.delete("/budget", status_code=status.HTTP_204_NO_CONTENT)
def remove_workspace_budget(platform: PlatformDep, principal: PrincipalDep) -> None:
    budgets.remove_budget(platform, principal, None)


@router.put("/budgets/{agent_id}", response_model=Budget)
def set_agent_budget(
    agent_id: AgentId, body: BudgetSet, platform: PlatformDep, principal: PrincipalDep
) -> Budget:
    return budgets.set_budget(platform, principal, agent_id, body)


@router.get("/budgets/{agent_id}", response_model=Budget)
def get_agent_budget(agent_id: AgentId, platform: PlatformDep, principal: PrincipalDep) -> Budget:
    return budgets.get_budget(platform, principal, agent_id)


@router.delete("/budgets/{agent_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_agent_budget(agent_id: AgentId, platform: PlatformDep, principal: PrincipalDep) -> None:
    budgets.remove_budget(platform, principal, agent_id)


# ---- invoices -------------------------------------------------------------------------------


@router.get("/invoices/preview", response_model=Invoice)
def preview_invoice(
    platform: PlatformDep,
    principal: PrincipalDep,
    period: PeriodQuery = None,
    agent_id: AgentQuery = None,
) -> Invoice:
    """A period not invoiced yet, priced as its usage stands (nothing is stored)."""
    return invoices.preview(platform, principal, period, agent_id)


@router.get("/invoices/preview/lines/{number}/events", response_model=r.Page[UsageEventInfo])
def preview_line_events(
    number: LineNumber,
    platform: PlatformDep,
    principal: PrincipalDep,
    period: PeriodQuery = None,
    agent_id: AgentQuery = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[UsageEventInfo]:
    """The usage events a preview line sums, by event id."""
    return invoices.preview_line_events(
        platform, principal, period, agent_id, number, limit=limit, cursor=cursor
    )


@router.post("/invoices", status_code=status.HTTP_201_CREATED, response_model=Invoice)
def issue_invoice(body: InvoiceIssue, platform: PlatformDep, principal: PrincipalDep) -> Invoice:
    """Issue the immutable invoice of a closed period (409 while it runs, or once issued:
    `details.invoice_id` names the existing one)."""
    return invoices.issue(platform, principal, body)


@router.get("/invoices", response_model=r.Page[InvoiceSummary])
def list_invoices(
    platform: PlatformDep,
    principal: PrincipalDep,
    agent_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[InvoiceSummary]:
    return invoices.list_invoices(
        platform, principal, agent_id=agent_id, limit=limit, cursor=cursor
    )


@router.get("/invoices/{invoice_id}.html", response_class=Response, responses=_HTML)
def get_invoice_html(invoice_id: str, platform: PlatformDep, principal: PrincipalDep) -> Response:
    """The issued invoice as HTML (print it to PDF from a browser)."""
    return HTMLResponse(
        invoices.invoice_html(platform, principal, invoice_id),
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )


@router.get("/invoices/{invoice_id}", response_model=Invoice)
def get_invoice(invoice_id: str, platform: PlatformDep, principal: PrincipalDep) -> Invoice:
    return invoices.get_invoice(platform, principal, invoice_id)


@router.get("/invoices/{invoice_id}/lines/{number}/events", response_model=r.Page[UsageEventInfo])
def line_events(
    invoice_id: str,
    number: LineNumber,
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[UsageEventInfo]:
    """The usage events an issued invoice's line sums, by event id."""
    return invoices.line_events(platform, principal, invoice_id, number, limit=limit, cursor=cursor)


# ---- disputes -------------------------------------------------------------------------------


@router.post("/disputes", status_code=status.HTTP_201_CREATED, response_model=Dispute)
def open_dispute(body: DisputeOpen, platform: PlatformDep, principal: PrincipalDep) -> Dispute:
    """Contest the billed outcome of a closed conversation (one dispute per conversation)."""
    return disputes.open_dispute(platform, principal, body)


@router.get("/disputes", response_model=r.Page[Dispute])
def list_disputes(
    platform: PlatformDep,
    principal: PrincipalDep,
    status: DisputeStatus | None = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[Dispute]:
    return disputes.list_disputes(platform, principal, status=status, limit=limit, cursor=cursor)


@router.get("/disputes/{dispute_id}", response_model=Dispute)
def get_dispute(dispute_id: str, platform: PlatformDep, principal: PrincipalDep) -> Dispute:
    return disputes.get_dispute(platform, principal, dispute_id)


@router.post("/disputes/{dispute_id}/accept", response_model=Dispute)
def accept_dispute(
    dispute_id: str, body: DisputeDecision, platform: PlatformDep, principal: PrincipalDep
) -> Dispute:
    """Reverse the outcome's charge (an `outcome_reversal` usage event) and close the
    dispute; a dispute is decided once (409 after)."""
    return disputes.accept_dispute(platform, principal, dispute_id, body)


@router.post("/disputes/{dispute_id}/reject", response_model=Dispute)
def reject_dispute(
    dispute_id: str, body: DisputeDecision, platform: PlatformDep, principal: PrincipalDep
) -> Dispute:
    """Keep the charge and close the dispute."""
    return disputes.reject_dispute(platform, principal, dispute_id, body)
