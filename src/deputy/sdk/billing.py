"""Billing, for `DeputyClient` (`client.billing`) and `AsyncDeputyClient` (the same, awaited):
plans, budgets, invoices (JSON and HTML) and disputes. Amounts are exact `Decimal`s.

client.billing.set_plan({"name": "Outcomes", "currency": "USD", "models": ["outcome_based"],
                         "components": [{"component": "resolved_outcome", "unit_price": "0.99",
                                         "free_allowance": "100"}]})
client.billing.set_budget("500", hard_stop=True)                 # the workspace, per month
print(client.billing.preview().total)                            # this month so far
invoice = client.billing.issue("2025-05")                        # a closed month, frozen
for event in client.billing.iter_line_events(invoice.id, 1):     # what line 1 sums
    print(event.event_id, event.quantity)
Path("invoice.html").write_text(client.billing.invoice_html(invoice.id))
dispute = client.billing.open_dispute(conversation_id, "not actually resolved")
client.billing.accept_dispute(dispute.id, note="refunded")       # reverses the charge
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from deputy.domain import resources as r
from deputy.domain.budgets import Budget
from deputy.domain.disputes import Dispute, DisputeStatus
from deputy.domain.pricing import BillingPlan, EffectivePlan, Invoice, InvoiceSummary, Plan
from deputy.domain.usage import UsageEventInfo
from deputy.sdk import _billing_calls as calls
from deputy.sdk._http import AsyncHTTP, SyncHTTP


class BillingAPI:
    """Plans, budgets, invoices and disputes. `agent_id=None` is the workspace's."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def set_plan(
        self, plan: Plan | Mapping[str, Any], *, agent_id: str | None = None
    ) -> BillingPlan:
        return self._http.run(calls.set_plan(plan, agent_id))

    def get_plan(self, *, agent_id: str | None = None) -> BillingPlan:
        return self._http.run(calls.get_plan(agent_id))

    def remove_plan(self, *, agent_id: str | None = None) -> None:
        self._http.run(calls.remove_plan(agent_id))

    def plans(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[EffectivePlan]:
        """Each agent's effective plan and where it comes from."""
        return self._http.run(calls.effective_plans(limit, cursor))

    def iter_plans(self, *, page_size: int | None = None) -> Iterator[EffectivePlan]:
        cursor: str | None = None
        while True:
            page = self.plans(limit=page_size, cursor=cursor)
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def set_budget(
        self,
        amount: Decimal | str,
        *,
        agent_id: str | None = None,
        currency: str | None = None,
        alert_thresholds: Sequence[float] | None = None,
        hard_stop: bool = False,
    ) -> Budget:
        call = calls.set_budget(agent_id, amount, currency, alert_thresholds, hard_stop)
        return self._http.run(call)

    def get_budget(self, *, agent_id: str | None = None) -> Budget:
        """The budget with this month's spend (`burn`)."""
        return self._http.run(calls.get_budget(agent_id))

    def remove_budget(self, *, agent_id: str | None = None) -> None:
        self._http.run(calls.remove_budget(agent_id))

    def preview(self, period: str | None = None, *, agent_id: str | None = None) -> Invoice:
        """A period not invoiced yet (default: this month), priced as it stands."""
        return self._http.run(calls.preview_invoice(period, agent_id))

    def issue(
        self, period: str, *, agent_id: str | None = None, idempotency_key: str | None = None
    ) -> Invoice:
        """Issue a closed period's immutable invoice."""
        return self._http.run(calls.issue_invoice(period, agent_id, idempotency_key))

    def invoices(
        self, *, agent_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[InvoiceSummary]:
        return self._http.run(calls.list_invoices(agent_id, limit, cursor))

    def invoice(self, invoice_id: str) -> Invoice:
        return self._http.run(calls.get_invoice(invoice_id))

    def invoice_html(self, invoice_id: str) -> str:
        """The issued invoice as a self-contained HTML page."""
        return self._http.run(calls.invoice_html(invoice_id))

    def line_events(
        self, invoice_id: str, number: int, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[UsageEventInfo]:
        return self._http.run(calls.line_events(invoice_id, number, limit, cursor))

    def iter_line_events(
        self, invoice_id: str, number: int, *, page_size: int | None = None
    ) -> Iterator[UsageEventInfo]:
        """Every usage event an issued invoice's line sums."""
        cursor: str | None = None
        while True:
            page = self.line_events(invoice_id, number, limit=page_size, cursor=cursor)
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def preview_line_events(
        self,
        number: int,
        *,
        period: str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[UsageEventInfo]:
        call = calls.preview_line_events(number, period, agent_id, limit, cursor)
        return self._http.run(call)

    def open_dispute(
        self, conversation_id: str, reason: str, *, idempotency_key: str | None = None
    ) -> Dispute:
        return self._http.run(calls.open_dispute(conversation_id, reason, idempotency_key))

    def disputes(
        self,
        *,
        status: DisputeStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[Dispute]:
        return self._http.run(calls.list_disputes(status, limit, cursor))

    def dispute(self, dispute_id: str) -> Dispute:
        return self._http.run(calls.get_dispute(dispute_id))

    def accept_dispute(self, dispute_id: str, *, note: str = "") -> Dispute:
        """Reverse the disputed outcome's charge."""
        return self._http.run(calls.decide_dispute(dispute_id, "accept", note))

    def reject_dispute(self, dispute_id: str, *, note: str = "") -> Dispute:
        return self._http.run(calls.decide_dispute(dispute_id, "reject", note))


class AsyncBillingAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def set_plan(
        self, plan: Plan | Mapping[str, Any], *, agent_id: str | None = None
    ) -> BillingPlan:
        return await self._http.run(calls.set_plan(plan, agent_id))

    async def get_plan(self, *, agent_id: str | None = None) -> BillingPlan:
        return await self._http.run(calls.get_plan(agent_id))

    async def remove_plan(self, *, agent_id: str | None = None) -> None:
        await self._http.run(calls.remove_plan(agent_id))

    async def plans(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[EffectivePlan]:
        return await self._http.run(calls.effective_plans(limit, cursor))

    async def iter_plans(self, *, page_size: int | None = None) -> AsyncIterator[EffectivePlan]:
        cursor: str | None = None
        while True:
            page = await self.plans(limit=page_size, cursor=cursor)
            for plan in page.data:
                yield plan
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def set_budget(
        self,
        amount: Decimal | str,
        *,
        agent_id: str | None = None,
        currency: str | None = None,
        alert_thresholds: Sequence[float] | None = None,
        hard_stop: bool = False,
    ) -> Budget:
        call = calls.set_budget(agent_id, amount, currency, alert_thresholds, hard_stop)
        return await self._http.run(call)

    async def get_budget(self, *, agent_id: str | None = None) -> Budget:
        return await self._http.run(calls.get_budget(agent_id))

    async def remove_budget(self, *, agent_id: str | None = None) -> None:
        await self._http.run(calls.remove_budget(agent_id))

    async def preview(self, period: str | None = None, *, agent_id: str | None = None) -> Invoice:
        return await self._http.run(calls.preview_invoice(period, agent_id))

    async def issue(
        self, period: str, *, agent_id: str | None = None, idempotency_key: str | None = None
    ) -> Invoice:
        return await self._http.run(calls.issue_invoice(period, agent_id, idempotency_key))

    async def invoices(
        self, *, agent_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[InvoiceSummary]:
        return await self._http.run(calls.list_invoices(agent_id, limit, cursor))

    async def invoice(self, invoice_id: str) -> Invoice:
        return await self._http.run(calls.get_invoice(invoice_id))

    async def invoice_html(self, invoice_id: str) -> str:
        return await self._http.run(calls.invoice_html(invoice_id))

    async def line_events(
        self, invoice_id: str, number: int, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[UsageEventInfo]:
        return await self._http.run(calls.line_events(invoice_id, number, limit, cursor))

    async def iter_line_events(
        self, invoice_id: str, number: int, *, page_size: int | None = None
    ) -> AsyncIterator[UsageEventInfo]:
        cursor: str | None = None
        while True:
            page = await self.line_events(invoice_id, number, limit=page_size, cursor=cursor)
            for event in page.data:
                yield event
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def preview_line_events(
        self,
        number: int,
        *,
        period: str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[UsageEventInfo]:
        call = calls.preview_line_events(number, period, agent_id, limit, cursor)
        return await self._http.run(call)

    async def open_dispute(
        self, conversation_id: str, reason: str, *, idempotency_key: str | None = None
    ) -> Dispute:
        return await self._http.run(calls.open_dispute(conversation_id, reason, idempotency_key))

    async def disputes(
        self,
        *,
        status: DisputeStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[Dispute]:
        return await self._http.run(calls.list_disputes(status, limit, cursor))

    async def dispute(self, dispute_id: str) -> Dispute:
        return await self._http.run(calls.get_dispute(dispute_id))

    async def accept_dispute(self, dispute_id: str, *, note: str = "") -> Dispute:
        return await self._http.run(calls.decide_dispute(dispute_id, "accept", note))

    async def reject_dispute(self, dispute_id: str, *, note: str = "") -> Dispute:
        return await self._http.run(calls.decide_dispute(dispute_id, "reject", note))
