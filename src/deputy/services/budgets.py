"""Budgets: a spending limit per calendar month (UTC) for the workspace or one agent.

Spend is the month so far priced exactly like its invoice (`deputy.billing.pricing`), summed
by the database (`deputy.billing.ledger.summed_tallies`) so a check costs a few grouped queries
whatever the month's volume; late events of invoiced months are not counted against it. Only
lines in the budget's currency count (a workspace bills in one: `deputy.services.billing_plans`).

- **Hard stop**: `ensure_within_budget` (called before a conversation is created) raises
  `BudgetExhausted` (402) while a hard-stop budget of the workspace or of the agent is spent.
  Conversations already open go on; raising the budget, or the next month, lets new ones in.
- **Alerts**: crossing a threshold opens an alert (kind `budget`, key
  `budget:<scope>:<YYYY-MM>:<threshold>`, `page` from 1.0, else `ticket`) once per month and
  amount; an alert whose threshold is no longer crossed (the budget was raised or removed, the
  month ended) is resolved. Checked on every budget check that lets a conversation in and by
  `keep_checking_budgets` (a sweep: an alert opened by a refused check would be rolled back
  with the refusal, so the sweep opens those).

Reading needs `billing:read`, setting and removing `billing:write` (audited)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.billing.ledger import summed_tallies
from deputy.billing.periods import Period, period_at
from deputy.billing.pricing import ZERO, price_tally
from deputy.domain.budgets import Budget, BudgetBurn, BudgetSet
from deputy.domain.errors import BudgetExhausted, NotFound, ValidationFailed
from deputy.domain.ids import new_id
from deputy.domain.pricing import WORKSPACE_SCOPE
from deputy.domain.tenancy import Principal
from deputy.services.access import tenant
from deputy.services.alerts import close_alert, open_alert
from deputy.services.audit import record_by
from deputy.services.billing_plans import PlanBook
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow

log = logging.getLogger(__name__)
ACTOR = "system:budgets"
SWEEP_SECONDS = 60.0


def _scope_key(agent_id: str | None) -> str:
    return agent_id or WORKSPACE_SCOPE


def _spends(
    session: Session, workspace_id: str, rows: Sequence[t.Budget], period: Period
) -> dict[str, Decimal]:
    """This month's spend of each budget's scope, in the budget's currency."""
    book = PlanBook(session)
    tallies = summed_tallies(session, workspace_id, period, None)
    book.prefetch(tally.agent_id for tally in tallies)
    priced = []
    for tally in tallies:
        terms = book.terms(tally.agent_id)
        if terms is not None:
            priced.append((tally.agent_id, terms.plan.currency, price_tally(tally, terms).amount))
    return {
        row.scope_key: sum(
            (
                amount
                for agent_id, currency, amount in priced
                if currency == row.currency
                and (row.scope_key == WORKSPACE_SCOPE or agent_id == row.agent_id)
            ),
            ZERO,
        )
        for row in rows
    }


def _burn(row: t.Budget, spend: Decimal, period: Period) -> BudgetBurn:
    amount = Decimal(row.amount)
    return BudgetBurn(
        budget_id=row.id,
        scope=row.scope_key,
        agent_id=row.agent_id,
        amount=amount,
        currency=row.currency,
        spend=spend,
        fraction=float(spend / amount),
        hard_stop=row.hard_stop,
        exhausted=spend >= amount,
        period=period.name,
        period_end=period.end,
    )


def _budgets(session: Session, workspace_id: str, agent_id: str | None) -> list[t.Budget]:
    scopes = [WORKSPACE_SCOPE] if agent_id is None else [WORKSPACE_SCOPE, agent_id]
    query = select(t.Budget).where(t.Budget.workspace_id == workspace_id)
    return list(session.scalars(query.where(t.Budget.scope_key.in_(scopes))))


def _burns(session: Session, workspace_id: str, rows: Sequence[t.Budget]) -> list[BudgetBurn]:
    if not rows:
        return []
    period = period_at(utcnow())
    spends = _spends(session, workspace_id, rows, period)
    return [_burn(row, spends[row.scope_key], period) for row in rows]


def budget_burn(session: Session, workspace_id: str, agent_id: str | None) -> list[BudgetBurn]:
    """The budgets that bound `agent_id` (the workspace's and its own; `None`: the
    workspace's only), with this month's spend."""
    return _burns(session, workspace_id, _budgets(session, workspace_id, agent_id))


def _alert_key(burn: BudgetBurn, threshold: float) -> str:
    return f"budget:{burn.scope}:{burn.period}:{threshold!r}"


def check_thresholds(
    session: Session, workspace_id: str, rows: Sequence[t.Budget], burns: Sequence[BudgetBurn]
) -> int:
    """Open the alerts of thresholds crossed (once per month and amount), resolve those no
    longer crossed; how many alerts this opened."""
    planned = [
        (row, burn, threshold, _alert_key(burn, threshold))
        for row, burn in zip(rows, burns, strict=True)
        for threshold in row.alert_thresholds
    ]
    if not planned:
        return 0
    keys = [key for *_, key in planned]
    known = session.scalars(
        select(t.Alert).where(t.Alert.workspace_id == workspace_id, t.Alert.key.in_(keys))
    ).all()
    opened = 0
    for row, burn, threshold, key in planned:
        same = [a for a in known if a.key == key]
        if burn.spend < burn.amount * Decimal(repr(threshold)):
            for alert in same:
                close_alert(session, alert, by=ACTOR)
            continue
        if any(a.details.get("amount") == str(burn.amount) for a in same):
            continue  # alerted for this month and amount already
        details = {
            "budget_id": row.id,
            "scope": burn.scope,
            "amount": str(burn.amount),
            "currency": burn.currency,
            "spend": str(burn.spend),
            "threshold": threshold,
            "period": burn.period,
            "hard_stop": burn.hard_stop,
        }
        label = "workspace" if burn.agent_id is None else f"agent {burn.agent_id}"
        _, now_open = open_alert(
            session,
            workspace_id,
            key=key,
            kind="budget",
            severity="page" if threshold >= 1.0 else "ticket",
            title=f"The {label} budget is at {burn.fraction:.0%} of {burn.amount} "
            f"{burn.currency} for {burn.period} (threshold {threshold:.0%})",
            details=details,
            agent_id=burn.agent_id,
        )
        opened += int(now_open)
    return opened


def _refusal(burn: BudgetBurn) -> BudgetExhausted:
    label = "workspace" if burn.agent_id is None else f"agent {burn.agent_id}'s"
    return BudgetExhausted(
        f"the {label} budget of {burn.amount} {burn.currency} for {burn.period} is spent "
        f"({burn.spend} {burn.currency}): new conversations are refused until "
        f"{burn.period_end.isoformat()} or until the budget is raised",
        details={
            "budget_id": burn.budget_id,
            "scope": burn.scope,
            "amount": str(burn.amount),
            "currency": burn.currency,
            "spend": str(burn.spend),
            "period": burn.period,
            "period_end": burn.period_end.isoformat(),
        },
    )


def ensure_within_budget(session: Session, workspace_id: str, agent_id: str | None) -> None:
    """Refuse (`BudgetExhausted`) when a hard-stop budget of the workspace or of the agent is
    spent; otherwise open the alerts of thresholds crossed, in the caller's transaction."""
    rows = _budgets(session, workspace_id, agent_id)
    if not rows:
        return
    burns = _burns(session, workspace_id, rows)
    for burn in burns:
        if burn.hard_stop and burn.exhausted:
            raise _refusal(burn)
    check_thresholds(session, workspace_id, rows, burns)


# ---- the API -------------------------------------------------------------------------------


def _resource(row: t.Budget, burn: BudgetBurn) -> Budget:
    return Budget(
        id=row.id,
        scope=row.scope_key,
        agent_id=row.agent_id,
        amount=Decimal(row.amount),
        currency=row.currency,
        alert_thresholds=list(row.alert_thresholds),
        hard_stop=row.hard_stop,
        created_at=row.created_at,
        updated_at=row.updated_at,
        burn=burn,
    )


def _check_agent(session: Session, agent_id: str | None) -> None:
    if agent_id is not None and session.get(t.Agent, agent_id) is None:
        raise NotFound("agent", agent_id)


def _stored(session: Session, agent_id: str | None) -> t.Budget:
    row = session.scalar(select(t.Budget).where(t.Budget.scope_key == _scope_key(agent_id)))
    if row is None:
        raise NotFound("budget", _scope_key(agent_id))
    return row


def _currency(session: Session, agent_id: str | None, given: str | None) -> str:
    currency = PlanBook(session).currency(agent_id)
    if currency is None:
        raise ValidationFailed(
            f"no plan prices {_scope_key(agent_id)}: set a plan before a budget",
            details={"scope": _scope_key(agent_id)},
        )
    if given is not None and given != currency:
        raise ValidationFailed(
            f"a budget is in its plan's currency, {currency}, not {given}",
            details={"currency": given, "plan_currency": currency},
        )
    return currency


def set_budget(
    platform: Platform, principal: Principal, agent_id: str | None, body: BudgetSet
) -> Budget:
    """Set (create or replace) the workspace's budget (`agent_id` None) or an agent's."""
    with tenant(platform, principal, "billing:write") as session:
        _check_agent(session, agent_id)
        currency = _currency(session, agent_id, body.currency)
        row = session.scalar(select(t.Budget).where(t.Budget.scope_key == _scope_key(agent_id)))
        created = row is None
        if row is None:
            row = t.Budget(
                id=new_id("bdg"),
                workspace_id=principal.workspace_id,
                agent_id=agent_id,
                scope_key=_scope_key(agent_id),
                created_at=utcnow(),
            )
            session.add(row)
        row.amount, row.currency = str(body.amount), currency
        row.alert_thresholds, row.hard_stop = list(body.alert_thresholds), body.hard_stop
        row.updated_at = utcnow()
        session.flush()
        record_by(
            session,
            principal,
            "billing.budget_set",
            "budget",
            row.id,
            {
                "scope": row.scope_key,
                "created": created,
                "amount": row.amount,
                "currency": currency,
                "alert_thresholds": row.alert_thresholds,
                "hard_stop": row.hard_stop,
            },
        )
        [burn] = _burns(session, principal.workspace_id, [row])
        check_thresholds(session, principal.workspace_id, [row], [burn])
        return _resource(row, burn)


def get_budget(platform: Platform, principal: Principal, agent_id: str | None) -> Budget:
    with tenant(platform, principal, "billing:read") as session:
        _check_agent(session, agent_id)
        row = _stored(session, agent_id)
        [burn] = _burns(session, principal.workspace_id, [row])
        return _resource(row, burn)


def remove_budget(platform: Platform, principal: Principal, agent_id: str | None) -> None:
    """Remove a budget; its firing alerts are resolved."""
    with tenant(platform, principal, "billing:write") as session:
        _check_agent(session, agent_id)
        row = _stored(session, agent_id)
        prefix = f"budget:{row.scope_key}:"
        for alert in session.scalars(
            select(t.Alert).where(t.Alert.kind == "budget", t.Alert.open_key.like(prefix + "%"))
        ):
            close_alert(session, alert, by=principal.key_id)
        record_by(
            session,
            principal,
            "billing.budget_removed",
            "budget",
            row.id,
            {"scope": row.scope_key, "amount": row.amount, "currency": row.currency},
        )
        session.delete(row)


# ---- the sweep ------------------------------------------------------------------------------


def _check_workspace(platform: Platform, workspace_id: str) -> int:
    with platform.db.tenant_session(workspace_id) as session:
        current = period_at(utcnow()).name
        for alert in session.scalars(
            select(t.Alert).where(t.Alert.kind == "budget", t.Alert.status == "firing")
        ):
            if alert.details.get("period") != current:  # its month is over
                close_alert(session, alert, by=ACTOR)
        rows = list(session.scalars(select(t.Budget).order_by(t.Budget.id)))
        return check_thresholds(session, workspace_id, rows, _burns(session, workspace_id, rows))


def check_budgets(platform: Platform) -> int:
    """Check every workspace's budgets against their thresholds; how many alerts opened."""
    with platform.db.session() as session:
        workspace_ids = list(session.scalars(select(t.Budget.workspace_id).distinct()))
        workspace_ids += [
            ws
            for ws in session.scalars(
                select(t.Alert.workspace_id)
                .where(t.Alert.kind == "budget", t.Alert.status == "firing")
                .distinct()
            )
            if ws not in workspace_ids
        ]
    opened = 0
    for workspace_id in workspace_ids:
        try:
            opened += _check_workspace(platform, workspace_id)
        except Exception:
            log.exception("checking the budgets of workspace %s failed", workspace_id)
    return opened


async def keep_checking_budgets(platform: Platform) -> None:
    """Check the budgets every `SWEEP_SECONDS` until cancelled."""
    while True:
        try:
            await platform.db.run(check_budgets, platform)
        except Exception:
            log.exception("checking budgets failed")
        await asyncio.sleep(SWEEP_SECONDS)
