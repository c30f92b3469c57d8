"""`deputy billing invoice` (preview, issue, list, show, HTML) and `deputy billing dispute`
(open, list, accept, reject): registered by `deputy.cli.billing`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, get_args

import typer

from deputy.cli.listing import AllPages, Cursor, Limit, fetch
from deputy.cli.output import (
    EXIT_USAGE,
    AsJson,
    Column,
    fail,
    out,
    print_fields,
    print_json,
    print_page,
    table,
    when,
)
from deputy.cli.state import agent_id_of, client
from deputy.domain.disputes import Dispute, DisputeStatus
from deputy.domain.pricing import Invoice, InvoiceLine, InvoiceSummary
from deputy.sdk import DeputyClient

invoice_app = typer.Typer(help="Preview, issue and read invoices.", no_args_is_help=True)
dispute_app = typer.Typer(help="Contest a billed outcome.", no_args_is_help=True)

AgentOption = Annotated[
    str | None, typer.Option("--agent", help="An agent (name or id); default: the workspace.")
]
PeriodOption = Annotated[str | None, typer.Option("--period", help="YYYY-MM (default: now).")]
STATUSES = get_args(DisputeStatus)


def scope_agent_id(sdk: DeputyClient, agent: str | None) -> str | None:
    """`--agent` as an agent id; None: the workspace."""
    return agent_id_of(sdk, agent) if agent else None


# ---- invoices -------------------------------------------------------------------------------

LINE_COLUMNS: list[Column[InvoiceLine]] = [
    ("#", lambda line: str(line.number)),
    ("SCOPE", lambda line: line.scope),
    ("ITEM", lambda line: f"{line.description} [{line.plan_source}]"),
    ("QUANTITY", lambda line: f"{line.quantity} {line.unit}"),
    ("FREE", lambda line: str(line.free_allowance_used)),
    ("BILLABLE", lambda line: str(line.billable_quantity)),
    ("PRICE", lambda line: "-" if line.unit_price is None else
     f"{line.unit_price}" + (f"/{line.per}" if line.per != 1 else "")),
    ("AMOUNT", lambda line: str(line.amount)),
    ("EVENTS", lambda line: str(line.event_count)),
    ("MODEL SPEND", lambda line: "-" if line.provider_cost_usd is None
     else f"${line.provider_cost_usd}"),
]  # fmt: skip


def _print_invoice(invoice: Invoice, as_json: bool) -> None:
    if as_json:
        print_json(invoice)
        return
    status = f"issued {when(invoice.issued_at)}" if invoice.issued_at else "preview"
    title = f"Invoice {invoice.id or ''} {invoice.scope} {invoice.period} ({status})".strip()
    out().print(table(invoice.lines, LINE_COLUMNS, title=title))
    out().print(f"Total: {invoice.total} {invoice.currency}", markup=False)
    for margin in invoice.margins:
        profit = "-" if margin.margin is None else str(margin.margin)
        out().print(
            f"  {margin.scope}: revenue {margin.revenue} {invoice.currency}, model spend "
            f"${margin.provider_cost_usd}, margin {profit}",
            markup=False,
        )
    if invoice.late_events:
        out().print(f"{invoice.late_events} late event(s) are billed on a later invoice.")


@invoice_app.command("preview")
def invoice_preview(
    ctx: typer.Context,
    period: PeriodOption = None,
    agent: AgentOption = None,
    as_json: AsJson = False,
) -> None:
    """A period not invoiced yet, priced as it stands (default: this month)."""
    sdk = client(ctx)
    _print_invoice(sdk.billing.preview(period, agent_id=scope_agent_id(sdk, agent)), as_json)


@invoice_app.command("issue")
def invoice_issue(
    ctx: typer.Context,
    period: Annotated[str, typer.Argument(help="A closed month, YYYY-MM.")],
    agent: AgentOption = None,
    as_json: AsJson = False,
) -> None:
    """Issue the immutable invoice of a closed month."""
    sdk = client(ctx)
    _print_invoice(sdk.billing.issue(period, agent_id=scope_agent_id(sdk, agent)), as_json)


SUMMARY_COLUMNS: list[Column[InvoiceSummary]] = [
    ("ID", lambda i: i.id),
    ("PERIOD", lambda i: i.period),
    ("SCOPE", lambda i: i.scope),
    ("TOTAL", lambda i: f"{i.total} {i.currency}"),
    ("ISSUED", lambda i: when(i.issued_at)),
]


@invoice_app.command("list")
def invoice_list(
    ctx: typer.Context,
    agent: AgentOption = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    all_pages: AllPages = False,
    as_json: AsJson = False,
) -> None:
    """Issued invoices, newest first."""
    sdk = client(ctx)
    agent_id = scope_agent_id(sdk, agent)
    page = fetch(
        lambda n, c: sdk.billing.invoices(agent_id=agent_id, limit=n, cursor=c),
        limit,
        cursor,
        all_pages,
    )
    print_page(page, SUMMARY_COLUMNS, as_json=as_json, noun="invoices")


@invoice_app.command("show")
def invoice_show(
    ctx: typer.Context,
    invoice_id: Annotated[str, typer.Argument(metavar="INVOICE", help="inv_…")],
    html: Annotated[
        Path | None, typer.Option("--html", dir_okay=False, help="Write it as HTML to FILE.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """An issued invoice; `--html FILE` saves the printable page."""
    sdk = client(ctx)
    if html is not None:
        html.write_text(sdk.billing.invoice_html(invoice_id), encoding="utf-8")
        out().print(f"Wrote {html}.", markup=False)
        return
    _print_invoice(sdk.billing.invoice(invoice_id), as_json)


# ---- disputes -------------------------------------------------------------------------------

DISPUTE_COLUMNS: list[Column[Dispute]] = [
    ("ID", lambda d: d.id),
    ("CONVERSATION", lambda d: d.conversation_id),
    ("STATUS", lambda d: d.status),
    ("REASON", lambda d: d.reason),
    ("OPENED", lambda d: when(d.opened_at)),
    ("REVERSAL", lambda d: d.reversal_event_id or "-"),
]


@dispute_app.command("open")
def dispute_open(
    ctx: typer.Context,
    conversation_id: Annotated[str, typer.Argument(metavar="CONVERSATION", help="cnv_…")],
    reason: Annotated[str, typer.Option("--reason", help="Why the outcome is contested.")],
    as_json: AsJson = False,
) -> None:
    """Contest the billed outcome of a closed conversation."""
    dispute = client(ctx).billing.open_dispute(conversation_id, reason)
    print_fields(dispute, as_json=as_json, title=f"Dispute {dispute.id}")


@dispute_app.command("list")
def dispute_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="open|accepted|rejected")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    all_pages: AllPages = False,
    as_json: AsJson = False,
) -> None:
    if status is not None and status not in STATUSES:
        raise fail(f"--status is one of {', '.join(STATUSES)}", EXIT_USAGE)
    sdk = client(ctx)
    page = fetch(
        # `status` is checked against STATUSES above
        lambda n, c: sdk.billing.disputes(status=status, limit=n, cursor=c),  # type: ignore[arg-type]
        limit,
        cursor,
        all_pages,
    )
    print_page(page, DISPUTE_COLUMNS, as_json=as_json, noun="disputes")


Note = Annotated[str, typer.Option("--note", help="Why (kept with the decision).")]


@dispute_app.command("accept")
def dispute_accept(
    ctx: typer.Context,
    dispute_id: Annotated[str, typer.Argument(metavar="DISPUTE")],
    note: Note = "",
    as_json: AsJson = False,
) -> None:
    """Accept: the outcome's charge is reversed."""
    dispute = client(ctx).billing.accept_dispute(dispute_id, note=note)
    print_fields(dispute, as_json=as_json, title=f"Dispute {dispute.id}")


@dispute_app.command("reject")
def dispute_reject(
    ctx: typer.Context,
    dispute_id: Annotated[str, typer.Argument(metavar="DISPUTE")],
    note: Note = "",
    as_json: AsJson = False,
) -> None:
    """Reject: the charge stands."""
    dispute = client(ctx).billing.reject_dispute(dispute_id, note=note)
    print_fields(dispute, as_json=as_json, title=f"Dispute {dispute.id}")
