"""The billing operations of the API (plans, budgets, invoices, disputes), as `Call`s (see
`deputy.sdk._calls`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

import httpx

from deputy.domain import resources as r
from deputy.domain.budgets import Budget
from deputy.domain.disputes import Dispute, DisputeStatus
from deputy.domain.pricing import BillingPlan, EffectivePlan, Invoice, InvoiceSummary, Plan
from deputy.domain.usage import UsageEventInfo
from deputy.sdk._calls import Call, _list_params, _model, _nothing, _page, _post, _seg

PATH = "/v1/billing"


def _plan_path(agent_id: str | None) -> str:
    return f"{PATH}/plan" if agent_id is None else f"{PATH}/plans/{_seg(agent_id)}"


def _budget_path(agent_id: str | None) -> str:
    return f"{PATH}/budget" if agent_id is None else f"{PATH}/budgets/{_seg(agent_id)}"


def set_plan(plan: Plan | Mapping[str, Any], agent_id: str | None) -> Call[BillingPlan]:
    body = Plan.model_validate(plan).model_dump(mode="json")
    return Call("PUT", _plan_path(agent_id), _model(BillingPlan), json=body)


def get_plan(agent_id: str | None) -> Call[BillingPlan]:
    return Call("GET", _plan_path(agent_id), _model(BillingPlan))


def remove_plan(agent_id: str | None) -> Call[None]:
    return Call("DELETE", _plan_path(agent_id), _nothing, gone_is_done=True)


def effective_plans(limit: int | None, cursor: str | None) -> Call[r.Page[EffectivePlan]]:
    return Call("GET", f"{PATH}/plans", _page(EffectivePlan), params=_list_params(limit, cursor))


def set_budget(
    agent_id: str | None,
    amount: Decimal | str,
    currency: str | None,
    alert_thresholds: Sequence[float] | None,
    hard_stop: bool,
) -> Call[Budget]:
    body: dict[str, Any] = {"amount": str(amount), "hard_stop": hard_stop}
    if currency is not None:
        body["currency"] = currency
    if alert_thresholds is not None:
        body["alert_thresholds"] = list(alert_thresholds)
    return Call("PUT", _budget_path(agent_id), _model(Budget), json=body)


def get_budget(agent_id: str | None) -> Call[Budget]:
    return Call("GET", _budget_path(agent_id), _model(Budget))


def remove_budget(agent_id: str | None) -> Call[None]:
    return Call("DELETE", _budget_path(agent_id), _nothing, gone_is_done=True)


def _scope_params(period: str | None, agent_id: str | None) -> dict[str, str | int]:
    params: dict[str, str | int] = {}
    if period is not None:
        params["period"] = period
    if agent_id is not None:
        params["agent_id"] = agent_id
    return params


def preview_invoice(period: str | None, agent_id: str | None) -> Call[Invoice]:
    params = _scope_params(period, agent_id)
    return Call("GET", f"{PATH}/invoices/preview", _model(Invoice), params=params)


def issue_invoice(period: str, agent_id: str | None, idempotency_key: str | None) -> Call[Invoice]:
    body: dict[str, Any] = {"period": period}
    if agent_id is not None:
        body["agent_id"] = agent_id
    return _post(f"{PATH}/invoices", _model(Invoice), body, idempotency_key)


def list_invoices(
    agent_id: str | None, limit: int | None, cursor: str | None
) -> Call[r.Page[InvoiceSummary]]:
    params = {**_list_params(limit, cursor), **_scope_params(None, agent_id)}
    return Call("GET", f"{PATH}/invoices", _page(InvoiceSummary), params=params)


def get_invoice(invoice_id: str) -> Call[Invoice]:
    return Call("GET", f"{PATH}/invoices/{_seg(invoice_id)}", _model(Invoice))


def _text(response: httpx.Response) -> str:
    return response.text


def invoice_html(invoice_id: str) -> Call[str]:
    path = f"{PATH}/invoices/{_seg(invoice_id)}.html"
    return Call("GET", path, _text, accept="text/html")


def line_events(
    invoice_id: str, number: int, limit: int | None, cursor: str | None
) -> Call[r.Page[UsageEventInfo]]:
    path = f"{PATH}/invoices/{_seg(invoice_id)}/lines/{number}/events"
    return Call("GET", path, _page(UsageEventInfo), params=_list_params(limit, cursor))


def preview_line_events(
    number: int, period: str | None, agent_id: str | None, limit: int | None, cursor: str | None
) -> Call[r.Page[UsageEventInfo]]:
    path = f"{PATH}/invoices/preview/lines/{number}/events"
    params = {**_list_params(limit, cursor), **_scope_params(period, agent_id)}
    return Call("GET", path, _page(UsageEventInfo), params=params)


def open_dispute(conversation_id: str, reason: str, idempotency_key: str | None) -> Call[Dispute]:
    body = {"conversation_id": conversation_id, "reason": reason}
    return _post(f"{PATH}/disputes", _model(Dispute), body, idempotency_key)


def list_disputes(
    status: DisputeStatus | None, limit: int | None, cursor: str | None
) -> Call[r.Page[Dispute]]:
    params = _list_params(limit, cursor)
    if status is not None:
        params["status"] = status
    return Call("GET", f"{PATH}/disputes", _page(Dispute), params=params)


def get_dispute(dispute_id: str) -> Call[Dispute]:
    return Call("GET", f"{PATH}/disputes/{_seg(dispute_id)}", _model(Dispute))


def decide_dispute(
    dispute_id: str, decision: Literal["accept", "reject"], note: str
) -> Call[Dispute]:
    """`decision`: accept | reject. A dispute is decided once: deciding again answers 409."""
    path = f"{PATH}/disputes/{_seg(dispute_id)}/{decision}"
    return Call("POST", path, _model(Dispute), json={"note": note})
