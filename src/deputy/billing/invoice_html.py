"""An invoice as one self-contained, printable HTML page: inline styles, no scripts, no
external assets, every text escaped."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from html import escape

from deputy.domain.pricing import Invoice, InvoiceLine

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #111;
       margin: 2rem auto; max-width: 1100px; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left;
         vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tfoot td { font-weight: 700; border-top: 2px solid #111; border-bottom: none; }
.muted { color: #555; font-size: .9em; }
@media print { body { margin: 0; max-width: none; } a { color: inherit; } }
"""

LINE_HEADERS = (
    ("#", True),
    ("Scope", False),
    ("Item", False),
    ("Quantity", True),
    ("Free", True),
    ("Billable", True),
    ("Unit price", True),
    ("Amount", True),
    ("Events", True),
    ("Provider cost (USD)", True),
)


def _number(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return f"{value.normalize():f}" if value == value.to_integral_value() else f"{value:f}"


def _cell(text: str, numeric: bool = False) -> str:
    return f'<td class="n">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>"


def _scope(agent_id: str | None, agents: Mapping[str, str]) -> str:
    if agent_id is None:
        return "Workspace"
    name = agents.get(agent_id)
    return f"{name} ({agent_id})" if name else agent_id


def _unit_price(line: InvoiceLine, currency: str) -> str:
    if line.unit_price is None:
        return "not priced"
    per = f" per {line.per:,} {line.unit}s" if line.per != 1 else f" per {line.unit}"
    return f"{_number(line.unit_price)} {currency}{per}"


def _line_row(line: InvoiceLine, currency: str, agents: Mapping[str, str]) -> str:
    cells = [
        _cell(str(line.number), True),
        _cell(_scope(line.agent_id, agents)),
        _cell(f"{line.description} [{line.plan_source} plan]"),
        _cell(f"{_number(line.quantity)} {line.unit}", True),
        _cell(_number(line.free_allowance_used), True),
        _cell(_number(line.billable_quantity), True),
        _cell(_unit_price(line, currency), True),
        _cell(f"{line.amount:f} {currency}", True),
        _cell(str(line.event_count), True),
        _cell(_number(line.provider_cost_usd), True),
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _header_row(headers: tuple[tuple[str, bool], ...]) -> str:
    cells = (
        f'<th class="n">{escape(h)}</th>' if numeric else f"<th>{escape(h)}</th>"
        for h, numeric in headers
    )
    return "<tr>" + "".join(cells) + "</tr>"


def _margins(invoice: Invoice, agents: Mapping[str, str]) -> str:
    rows = [
        "<tr>"
        + _cell(_scope(m.agent_id, agents))
        + _cell(f"{m.revenue:f} {invoice.currency}", True)
        + _cell(_number(m.provider_cost_usd), True)
        + _cell("-" if m.margin is None else f"{m.margin:f}", True)
        + "</tr>"
        for m in invoice.margins
    ]
    head = _header_row(
        (("Scope", False), ("Revenue", True), ("Provider cost (USD)", True), ("Margin", True))
    )
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def render_invoice(invoice: Invoice, workspace_name: str, agents: Mapping[str, str]) -> str:
    """The page for `invoice`; `agents` names the agents its lines mention."""
    title = f"Invoice {invoice.id or 'preview'} — {invoice.period}"
    scope = _scope(invoice.agent_id, agents)
    issued = invoice.issued_at.isoformat() if invoice.issued_at else "not issued (preview)"
    lines = "".join(_line_row(line, invoice.currency, agents) for line in invoice.lines)
    late = (
        f"<p>{invoice.late_events} event(s) of this period were recorded after it was issued; "
        "they are billed on a later invoice (late lines).</p>"
        if invoice.late_events
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p>{escape(workspace_name)} · {escape(scope)}</p>
<p class="muted">Period {escape(invoice.period_start.isoformat())} to
{escape(invoice.period_end.isoformat())} (UTC, end excluded) · issued {escape(issued)} ·
currency {escape(invoice.currency)}</p>
<table>
<thead>{_header_row(LINE_HEADERS)}</thead>
<tbody>{lines}</tbody>
<tfoot><tr><td colspan="7">Total</td>{_cell(f"{invoice.total:f} {invoice.currency}", True)}
<td colspan="2"></td></tr></tfoot>
</table>
{late}
<h2>Margins</h2>
{_margins(invoice, agents)}
<p class="muted">Amounts are rounded half-even to the currency's minor unit on each line; the
total is the sum of the lines. Each line lists the usage events it sums at
/v1/billing/invoices/{escape(invoice.id or "preview")}/lines/&lt;n&gt;/events.</p>
</body>
</html>
"""
