"""Invoices: a period's usage priced by the plans that apply (`deputy.billing.pricing`).

A **preview** prices a period from its events as they are now, stores nothing (the current
month so far, typically). **Issuing** freezes a closed period's invoice: its lines, each with
the ids of the events it sums, and its total; an issued invoice never changes. Events of that
period recorded after it are billed once, on a `late` line of the period they were found in
(`deputy.billing.late_events`), and the issued invoice says how many there are.

An invoice is the workspace's (every agent's usage and the workspace's own: seats) or one
agent's. For a period, either the workspace has one invoice or some agents have their own: not
both, so nothing is billed twice.

Reading needs `billing:read`; issuing `billing:write`."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deputy.billing.event_lookup import by_event_ids
from deputy.billing.invoice_html import render_invoice
from deputy.billing.late_events import late_count, late_records
from deputy.billing.ledger import traced_tallies
from deputy.billing.periods import Period, parse_period, period_at, period_of
from deputy.billing.pricing import (
    ZERO,
    Tally,
    invoice_currency,
    margins,
    order_tallies,
    price_tally,
)
from deputy.domain import resources as r
from deputy.domain.errors import Conflict, NotFound
from deputy.domain.ids import new_id
from deputy.domain.pricing import (
    WORKSPACE_SCOPE,
    Invoice,
    InvoiceIssue,
    InvoiceLine,
    InvoiceSummary,
)
from deputy.domain.tenancy import Principal
from deputy.domain.usage import UsageEventInfo
from deputy.services.access import tenant
from deputy.services.billing_plans import PlanBook
from deputy.services.pagination import decode_cursor, encode_cursor, paginate
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow


def compute_invoice(
    session: Session, workspace_id: str, period: Period, agent_id: str | None
) -> tuple[Invoice, list[Tally]]:
    """The period's invoice as its events price it now (a preview), and the tallies behind
    its lines (in line order)."""
    book = PlanBook(session)
    late = late_records(session, workspace_id, period, agent_id)
    tallies = order_tallies(
        traced_tallies(session, workspace_id, period.start, period.end, agent_id, late)
    )
    book.prefetch(tally.agent_id for tally in tallies)
    currency = invoice_currency(tallies, book.terms)
    lines = [
        price_tally(tally, book.terms(tally.agent_id), n) for n, tally in enumerate(tallies, 1)
    ]
    invoice = Invoice(
        id=None,
        status="preview",
        scope=agent_id or WORKSPACE_SCOPE,
        agent_id=agent_id,
        period=period.name,
        period_start=period.start,
        period_end=period.end,
        currency=currency,
        total=sum((line.amount for line in lines), ZERO),
        lines=lines,
        margins=margins(lines, currency),
    )
    return invoice, tallies


def _check_agent(session: Session, agent_id: str | None) -> None:
    if agent_id is not None and session.get(t.Agent, agent_id) is None:
        raise NotFound("agent", agent_id)


def _covering(session: Session, period: Period, agent_id: str | None) -> list[t.Invoice]:
    """Issued invoices of `period` that already bill (some of) this scope's usage."""
    scopes = [WORKSPACE_SCOPE] if agent_id is None else [WORKSPACE_SCOPE, agent_id]
    query = select(t.Invoice).where(t.Invoice.period_start == period.start)
    if agent_id is not None:
        query = query.where(t.Invoice.scope_key.in_(scopes))
    return list(session.scalars(query.order_by(t.Invoice.id)))


def _issued_conflict(period: Period, found: Sequence[t.Invoice]) -> Conflict:
    first = found[0]
    return Conflict(
        f"{period.name} is invoiced already ({first.scope_key}: {first.id})",
        details={
            "invoice_id": first.id,
            "scope": first.scope_key,
            "invoices": {row.scope_key: row.id for row in found},
        },
    )


def preview(
    platform: Platform, principal: Principal, period_name: str | None, agent_id: str | None
) -> Invoice:
    """The invoice of a period not invoiced yet, as it stands (default: this month)."""
    period = parse_period(period_name) if period_name else period_at(utcnow())
    with tenant(platform, principal, "billing:read") as session:
        _check_agent(session, agent_id)
        found = _covering(session, period, agent_id)
        if found:
            raise _issued_conflict(period, found)
        return compute_invoice(session, principal.workspace_id, period, agent_id)[0]


def _stored_line(line: InvoiceLine, tally: Tally) -> dict[str, object]:
    return {**line.model_dump(mode="json"), "event_ids": list(tally.event_ids)}


def _from_row(session: Session, row: t.Invoice) -> Invoice:
    lines = [InvoiceLine.model_validate(line) for line in row.lines]
    return Invoice(
        id=row.id,
        status="issued",
        scope=row.scope_key,
        agent_id=row.agent_id,
        period=period_of(row.period_start),
        period_start=row.period_start,
        period_end=row.period_end,
        currency=row.currency,
        total=Decimal(row.total),
        lines=lines,
        margins=margins(lines, row.currency),
        issued_at=row.created_at,
        late_events=late_count(session, row),
    )


def issue(platform: Platform, principal: Principal, body: InvoiceIssue) -> Invoice:
    """Issue the invoice of a closed period: 409 `conflict` while the period runs, or when
    it (or, for the other kind of scope, part of it) is invoiced already."""
    period = parse_period(body.period)
    now = utcnow()
    if not period.is_over(now):
        raise Conflict(
            f"{period.name} is not over: it can be invoiced from {period.end.isoformat()}",
            details={"period": period.name, "period_end": period.end.isoformat()},
        )
    try:
        with tenant(platform, principal, "billing:write") as session:
            _check_agent(session, body.agent_id)
            found = _covering(session, period, body.agent_id)
            if found:
                raise _issued_conflict(period, found)
            invoice, tallies = compute_invoice(
                session, principal.workspace_id, period, body.agent_id
            )
            row = t.Invoice(
                id=new_id("inv"),
                workspace_id=principal.workspace_id,
                agent_id=body.agent_id,
                scope_key=invoice.scope,
                period_start=period.start,
                period_end=period.end,
                currency=invoice.currency,
                total=str(invoice.total),
                lines=[
                    _stored_line(line, tally)
                    for line, tally in zip(invoice.lines, tallies, strict=True)
                ],
                created_at=now,
            )
            session.add(row)
            session.flush()
            return _from_row(session, row)
    except IntegrityError:  # issued at the same moment by another request
        with tenant(platform, principal, "billing:read") as session:
            found = _covering(session, period, body.agent_id)
        if not found:
            raise
        raise _issued_conflict(period, found) from None


def _summary(row: t.Invoice) -> InvoiceSummary:
    return InvoiceSummary(
        id=row.id,
        scope=row.scope_key,
        agent_id=row.agent_id,
        period=period_of(row.period_start),
        currency=row.currency,
        total=Decimal(row.total),
        issued_at=row.created_at,
    )


def list_invoices(
    platform: Platform,
    principal: Principal,
    *,
    agent_id: str | None,
    limit: int,
    cursor: str | None,
) -> r.Page[InvoiceSummary]:
    """Issued invoices, newest first (one agent's only, with `agent_id`)."""
    query = select(t.Invoice)
    if agent_id is not None:
        query = query.where(t.Invoice.agent_id == agent_id)
    with tenant(platform, principal, "billing:read") as session:
        return paginate(
            session, query, t.Invoice.id, limit=limit, cursor=cursor, to_resource=_summary
        )


def _invoice_row(session: Session, invoice_id: str) -> t.Invoice:
    row = session.get(t.Invoice, invoice_id)
    if row is None:
        raise NotFound("invoice", invoice_id)
    found: t.Invoice = row
    return found


def get_invoice(platform: Platform, principal: Principal, invoice_id: str) -> Invoice:
    with tenant(platform, principal, "billing:read") as session:
        return _from_row(session, _invoice_row(session, invoice_id))


def invoice_html(platform: Platform, principal: Principal, invoice_id: str) -> str:
    """The issued invoice as a self-contained, printable HTML page."""
    with tenant(platform, principal, "billing:read") as session:
        invoice = _from_row(session, _invoice_row(session, invoice_id))
        workspace = session.get(t.Workspace, principal.workspace_id)
        agents = {
            agent_id: name
            for agent_id, name in session.execute(select(t.Agent.id, t.Agent.name))
            if any(line.agent_id == agent_id for line in invoice.lines)
        }
    return render_invoice(invoice, workspace.name if workspace else "", agents)


def _events_page(
    session: Session, workspace_id: str, event_ids: Sequence[str], limit: int, cursor: str | None
) -> r.Page[UsageEventInfo]:
    ordered = sorted(event_ids)
    start = bisect.bisect_right(ordered, decode_cursor(cursor)) if cursor else 0
    chunk = ordered[start : start + limit]
    rows = sorted(by_event_ids(session, workspace_id, chunk), key=lambda row: row.event_id)
    more = start + limit < len(ordered)
    return r.Page[UsageEventInfo](
        data=[UsageEventInfo.model_validate(row._asdict()) for row in rows],
        next_cursor=encode_cursor(chunk[-1]) if more and chunk else None,
    )


def line_events(
    platform: Platform,
    principal: Principal,
    invoice_id: str,
    number: int,
    *,
    limit: int,
    cursor: str | None,
) -> r.Page[UsageEventInfo]:
    """The usage events an issued invoice's line `number` sums, by event id."""
    with tenant(platform, principal, "billing:read") as session:
        row = _invoice_row(session, invoice_id)
        if not 1 <= number <= len(row.lines):
            raise NotFound("invoice line", f"{invoice_id}/{number}")
        event_ids = row.lines[number - 1].get("event_ids", [])
        return _events_page(session, principal.workspace_id, event_ids, limit, cursor)


def preview_line_events(
    platform: Platform,
    principal: Principal,
    period_name: str | None,
    agent_id: str | None,
    number: int,
    *,
    limit: int,
    cursor: str | None,
) -> r.Page[UsageEventInfo]:
    """The usage events a preview's line `number` sums (the preview priced again: a line
    that appeared since, e.g. a first tool call, can shift the numbers after it)."""
    period = parse_period(period_name) if period_name else period_at(utcnow())
    with tenant(platform, principal, "billing:read") as session:
        _check_agent(session, agent_id)
        found = _covering(session, period, agent_id)
        if found:
            raise _issued_conflict(period, found)
        _, tallies = compute_invoice(session, principal.workspace_id, period, agent_id)
        if not 1 <= number <= len(tallies):
            raise NotFound("invoice line", f"preview {period.name}/{number}")
        event_ids = tallies[number - 1].event_ids
        return _events_page(session, principal.workspace_id, event_ids, limit, cursor)
