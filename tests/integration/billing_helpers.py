"""Shared by the billing tests: plans and budgets set through the API, invoices read back, and
each invoice line checked against the usage events the API lists for it, with the arithmetic
done here (not by the code under test)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tests.integration.conftest import Api

PER = {"tokens_1k": 1000}
MINOR = {"JPY": 0}


def plan_body(currency: str = "USD", name: str = "Test plan", **prices: Any) -> dict[str, Any]:
    """A plan: each component `name=price` or `name=(price, free allowance)`."""
    models = {
        "resolved_outcome": "outcome_based",
        "escalated_outcome": "outcome_based",
        "seat_month": "seat_based",
    }
    components = []
    for component, price in prices.items():
        unit_price, free = price if isinstance(price, tuple) else (price, "0")
        components.append(
            {"component": component, "unit_price": str(unit_price), "free_allowance": str(free)}
        )
    used = sorted({models.get(c, "consumption_based") for c in prices})
    return {"name": name, "currency": currency, "models": used, "components": components}


def put_plan(api: Api, agent_id: str | None = None, key: str | None = None, **prices: Any) -> Any:
    path = "/v1/billing/plan" if agent_id is None else f"/v1/billing/plans/{agent_id}"
    response = api.client.put(path, json=plan_body(**prices), headers=api.headers(key))
    assert response.status_code == 200, response.text
    return response.json()


def previous_month(now: datetime | None = None) -> tuple[str, datetime]:
    """The last closed month (YYYY-MM) and an instant in the middle of it."""
    first = (now or datetime.now(UTC)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    middle = (first - timedelta(days=1)).replace(day=14, hour=12)
    return f"{middle:%Y-%m}", middle


def preview(api: Api, key: str | None = None, **params: str) -> dict[str, Any]:
    response = api.client.get(
        "/v1/billing/invoices/preview", params=params, headers=api.headers(key)
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def line_events(
    api: Api, invoice: dict[str, Any], number: int, key: str | None = None
) -> list[dict[str, Any]]:
    """Every event the API lists for line `number`, two per page (exercising the cursor)."""
    if invoice["id"] is None:
        path = f"/v1/billing/invoices/preview/lines/{number}/events"
        base = {"period": invoice["period"]}
        if invoice["agent_id"]:
            base["agent_id"] = invoice["agent_id"]
    else:
        path = f"/v1/billing/invoices/{invoice['id']}/lines/{number}/events"
        base = {}
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {**base, "limit": 2, **({"cursor": cursor} if cursor else {})}
        response = api.client.get(path, params=params, headers=api.headers(key))
        assert response.status_code == 200, response.text
        page = response.json()
        events.extend(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            return events


def expected_amount(
    quantity: Decimal, price: Decimal, free: Decimal, per: int, currency: str
) -> Decimal:
    billable = quantity - min(free, max(quantity, Decimal(0)))
    places = Decimal(1).scaleb(-MINOR.get(currency, 2))
    return (billable * price / per).quantize(places, rounding=ROUND_HALF_EVEN)


def check_invoice(
    api: Api, invoice: dict[str, Any], prices: dict[tuple[str, str], tuple[str, str]]
) -> dict[tuple[str, str], Decimal]:
    """Each usage line's amount is its events' quantities priced by `prices` ((scope,
    component) -> (unit price, free allowance); absent: not priced) and the total is the sum of
    the lines. Returns each line's quantity by (scope, component)."""
    quantities: dict[tuple[str, str], Decimal] = {}
    total = Decimal(0)
    for line in invoice["lines"]:
        events = line_events(api, invoice, line["number"])
        assert len(events) == line["event_count"]
        assert len({e["event_id"] for e in events}) == len(events)
        for event in events:
            assert (event["agent_id"] or "workspace") == line["scope"]
        quantity = sum((Decimal(e["quantity"]) for e in events), Decimal(0))
        assert Decimal(line["quantity"]) == quantity
        key = (line["scope"], line["component"])
        if line["kind"] == "usage":
            quantities[key] = quantity
            priced = prices.get(key)
            if priced is None:
                assert line["unit_price"] is None and Decimal(line["amount"]) == 0
            else:
                price, free = Decimal(priced[0]), Decimal(priced[1])
                per = PER.get(line["component"], 1)
                amount = expected_amount(quantity, price, free, per, invoice["currency"])
                assert Decimal(line["amount"]) == amount, line
        total += Decimal(line["amount"])
    assert Decimal(invoice["total"]) == total
    return quantities
