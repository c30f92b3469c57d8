"""`deputy billing`: plans (the workspace's and each agent's), budgets, invoices (preview,
issue, list, show, HTML) and disputes. `--agent` takes an agent's name or id; without it, the
workspace's.

A plan comes from `--file plan.yaml` (JSON or YAML: name, currency, models, components) or
from options: `--price COMPONENT=PRICE[/FREE]` (repeatable), `--currency`, `--name`; its
billing models are those of the components priced."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.table import Table

from deputy.cli.billing_documents import AgentOption, dispute_app, invoice_app, scope_agent_id
from deputy.cli.listing import fetch
from deputy.cli.output import (
    EXIT_USAGE,
    AsJson,
    Column,
    fail,
    out,
    print_fields,
    print_json,
    print_page,
    when,
)
from deputy.cli.state import client
from deputy.domain.budgets import Budget
from deputy.domain.pricing import (
    COMPONENTS,
    BillingPlan,
    EffectivePlan,
    Plan,
)

billing_app = typer.Typer(help="Plans, budgets, invoices and disputes.", no_args_is_help=True)
plan_app = typer.Typer(help="What the workspace or an agent pays.", no_args_is_help=True)
budget_app = typer.Typer(help="Monthly spending limits, alerts, hard stops.", no_args_is_help=True)
billing_app.add_typer(plan_app, name="plan")
billing_app.add_typer(budget_app, name="budget")
billing_app.add_typer(invoice_app, name="invoice")
billing_app.add_typer(dispute_app, name="dispute")

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _scope(agent: str | None) -> str:
    return f"agent {agent}" if agent else "the workspace"


# ---- plans ----------------------------------------------------------------------------------


def _price(item: str) -> dict[str, Any]:
    name, _, value = item.partition("=")
    price, _, free = value.partition("/")
    if name not in COMPONENTS or not price:
        raise fail(
            f"--price takes COMPONENT=PRICE[/FREE], COMPONENT one of {', '.join(COMPONENTS)}; "
            f"got {item!r}",
            EXIT_USAGE,
        )
    return {"component": name, "unit_price": price, "free_allowance": free or "0"}


def read_plan(
    path: Path | None, prices: list[str] | None, currency: str | None, name: str | None
) -> Plan:
    """The plan in `path`, or built from `--price` options; either way validated here."""
    if path is not None:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise fail(f"cannot read {path}: {exc}", EXIT_USAGE) from None
        if not isinstance(raw, dict):
            raise fail(f"{path} must hold a plan (a mapping)", EXIT_USAGE)
    else:
        if not prices:
            raise fail("give --file PLAN or at least one --price", EXIT_USAGE)
        components = [_price(item) for item in prices]
        models = sorted({COMPONENTS[c["component"]].model for c in components})
        raw = {
            "name": name or "Plan",
            "currency": currency or "USD",
            "models": models,
            "components": components,
        }
    try:
        return Plan.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise fail(f"the plan is not valid: {problems}", EXIT_USAGE) from None


def _print_plan(plan: Plan, title: str) -> None:
    out().print(f"{title}: {plan.name} ({plan.currency}; {', '.join(plan.models)})", markup=False)
    grid = Table("COMPONENT", "UNIT PRICE", "FREE PER MONTH")
    for c in plan.components:
        grid.add_row(c.component, f"{c.unit_price} {plan.currency}", str(c.free_allowance))
    out().print(grid)


@plan_app.command("set")
def plan_set(
    ctx: typer.Context,
    agent: AgentOption = None,
    file: Annotated[
        Path | None, typer.Option("--file", exists=True, dir_okay=False, help="JSON or YAML.")
    ] = None,
    prices: Annotated[
        list[str] | None,
        typer.Option("--price", metavar="COMPONENT=PRICE[/FREE]", help="A priced component."),
    ] = None,
    currency: Annotated[str | None, typer.Option("--currency", help="ISO 4217.")] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    as_json: AsJson = False,
) -> None:
    """Set the workspace's plan, or an agent's (`--agent`)."""
    plan = read_plan(file, prices, currency, name)
    sdk = client(ctx)
    stored = sdk.billing.set_plan(plan, agent_id=scope_agent_id(sdk, agent))
    _show_plan(stored, as_json)


def _show_plan(stored: BillingPlan, as_json: bool) -> None:
    if as_json:
        print_json(stored)
    else:
        _print_plan(stored.plan, f"Plan of {stored.scope} ({stored.id})")


EFFECTIVE_COLUMNS: list[Column[EffectivePlan]] = [
    ("AGENT", lambda p: f"{p.agent_name} ({p.agent_id})"),
    ("SOURCE", lambda p: p.source + (f" v{p.spec_version}" if p.spec_version else "")),
    ("PLAN", lambda p: p.plan.name if p.plan else "-"),
    ("CURRENCY", lambda p: p.plan.currency if p.plan else "-"),
    ("PRICES", lambda p: ", ".join(f"{c.component} {c.unit_price}" for c in p.plan.components)
     if p.plan else "-"),
]  # fmt: skip


@plan_app.command("show")
def plan_show(
    ctx: typer.Context,
    agent: AgentOption = None,
    effective: Annotated[
        bool, typer.Option("--effective", help="Every agent's effective plan and its source.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """The stored plan of the workspace or an agent; `--effective`: what prices each agent."""
    sdk = client(ctx)
    if effective:
        page = fetch(lambda n, c: sdk.billing.plans(limit=n, cursor=c), 200, None, True)
        print_page(page, EFFECTIVE_COLUMNS, as_json=as_json, noun="agents")
        return
    _show_plan(sdk.billing.get_plan(agent_id=scope_agent_id(sdk, agent)), as_json)


@plan_app.command("remove")
def plan_remove(ctx: typer.Context, agent: AgentOption = None, yes: Yes = False) -> None:
    """Remove a stored plan (the next plan that applies takes over)."""
    sdk = client(ctx)
    agent_id = scope_agent_id(sdk, agent)
    if not yes:
        typer.confirm(f"Remove the plan of {_scope(agent)}?", abort=True)
    sdk.billing.remove_plan(agent_id=agent_id)
    out().print(f"Removed the plan of {_scope(agent)}.", markup=False)


# ---- budgets --------------------------------------------------------------------------------


def _print_budget(budget: Budget, as_json: bool) -> None:
    if as_json:
        print_json(budget)
        return
    burn = budget.burn
    print_fields(budget, as_json=False, title=f"Budget of {budget.scope}", skip=("burn",))
    state = "EXHAUSTED" if burn.exhausted else "within budget"
    stop = " (hard stop: new conversations refused)" if burn.exhausted and burn.hard_stop else ""
    out().print(
        f"{burn.period}: spent {burn.spend} of {burn.amount} {burn.currency} "
        f"({burn.fraction:.0%}), {state}{stop}; the month ends {when(burn.period_end)}.",
        markup=False,
    )


@budget_app.command("set")
def budget_set(
    ctx: typer.Context,
    amount: Annotated[str, typer.Argument(help="The limit per calendar month.")],
    agent: AgentOption = None,
    currency: Annotated[str | None, typer.Option("--currency")] = None,
    thresholds: Annotated[
        list[float] | None,
        typer.Option("--threshold", help="Alert at this fraction (repeatable; default .5 .8 1)."),
    ] = None,
    hard_stop: Annotated[
        bool,
        typer.Option("--hard-stop/--no-hard-stop", help="Refuse new conversations when spent."),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Set the monthly budget of the workspace or an agent."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise fail(f"the amount must be a number, got {amount!r}", EXIT_USAGE) from None
    sdk = client(ctx)
    budget = sdk.billing.set_budget(
        value,
        agent_id=scope_agent_id(sdk, agent),
        currency=currency,
        alert_thresholds=thresholds,
        hard_stop=hard_stop,
    )
    _print_budget(budget, as_json)


@budget_app.command("show")
def budget_show(ctx: typer.Context, agent: AgentOption = None, as_json: AsJson = False) -> None:
    """The budget and this month's spend."""
    sdk = client(ctx)
    _print_budget(sdk.billing.get_budget(agent_id=scope_agent_id(sdk, agent)), as_json)


@budget_app.command("remove")
def budget_remove(ctx: typer.Context, agent: AgentOption = None, yes: Yes = False) -> None:
    sdk = client(ctx)
    agent_id = scope_agent_id(sdk, agent)
    if not yes:
        typer.confirm(f"Remove the budget of {_scope(agent)}?", abort=True)
    sdk.billing.remove_budget(agent_id=agent_id)
    out().print(f"Removed the budget of {_scope(agent)}.", markup=False)
