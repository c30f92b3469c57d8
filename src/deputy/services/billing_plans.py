"""Billing plans: set, read and remove the workspace's plan and each agent's own, and find
the plan that prices an agent's events.

Which plan applies to an agent: its own plan (set here), else its live spec's
`outcomes.billing` (the version live on the `all` channel, else the most recently deployed
one, else the latest version of an agent never deployed), else the workspace plan, else none
(its usage is counted, nothing is charged). Events of no agent (seats) are priced by the
workspace plan only, so an agent plan may not price seats. A workspace bills in one currency:
a plan or budget in another one is refused while others exist.

Reading needs `billing:read`, setting and removing `billing:write` (both audited)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deputy.billing.pricing import Terms
from deputy.domain import resources as r
from deputy.domain.errors import Conflict, DeputyError, NotFound, ValidationFailed
from deputy.domain.ids import new_id
from deputy.domain.pricing import (
    WORKSPACE_SCOPE,
    BillingPlan,
    EffectivePlan,
    Plan,
    PlanSource,
    plan_from_spec,
)
from deputy.domain.tenancy import Principal
from deputy.services.access import tenant
from deputy.services.audit import record_by
from deputy.services.conversation_store import agent_spec
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Resolved:
    terms: Terms | None
    plan_id: str | None = None
    spec_version: int | None = None

    @property
    def source(self) -> PlanSource:
        return self.terms.source if self.terms is not None else "none"


def _scope_key(agent_id: str | None) -> str:
    return agent_id or WORKSPACE_SCOPE


def live_spec_versions(session: Session, agent_ids: Iterable[str]) -> dict[str, int | None]:
    """The version whose spec prices each agent: live on `all`, else the most recently
    deployed one, else its latest version (an agent never deployed answers with it)."""
    wanted = sorted(set(agent_ids))
    if not wanted:
        return {}
    chosen: dict[str, int | None] = {}
    deployments = session.scalars(
        select(t.Deployment)
        .where(t.Deployment.agent_id.in_(wanted))
        .order_by(t.Deployment.updated_at.desc())
    ).all()
    for deployment in deployments:  # the newest first; the `all` channel's wins
        if deployment.channel == "all":
            chosen[deployment.agent_id] = deployment.live_version
        else:
            chosen.setdefault(deployment.agent_id, deployment.live_version)
    latest = session.execute(
        select(t.Agent.id, t.Agent.latest_version).where(t.Agent.id.in_(wanted))
    ).all()
    for agent_id, version in latest:
        chosen.setdefault(agent_id, version or None)
    return chosen


class PlanBook:
    """The plans of one workspace, read once per session, resolved per agent on demand."""

    def __init__(self, session: Session) -> None:
        self._session = session
        rows = session.scalars(select(t.BillingPlan)).all()
        self._stored = {row.scope_key: row for row in rows}
        self._resolved: dict[str | None, Resolved] = {}
        self._versions: dict[str, int | None] = {}

    def prefetch(self, agent_ids: Iterable[str | None]) -> None:
        """Look up the live spec versions of these agents at once (two queries)."""
        missing = {a for a in agent_ids if a is not None and a not in self._versions}
        self._versions.update(dict.fromkeys(missing))
        self._versions.update(live_spec_versions(self._session, missing))

    def _stored_terms(self, scope_key: str, source: PlanSource) -> Resolved | None:
        row = self._stored.get(scope_key)
        if row is None:
            return None
        return Resolved(Terms(Plan.model_validate(row.plan), source), plan_id=row.id)

    def _spec_terms(self, agent_id: str) -> Resolved | None:
        self.prefetch([agent_id])
        version = self._versions[agent_id]
        if version is None:
            return None
        try:
            billing = agent_spec(self._session, agent_id, version).outcomes.billing
            plan = None if billing is None else plan_from_spec(billing, f"spec v{version}")
        except (DeputyError, ValidationError) as exc:  # e.g. a currency outside ISO 4217
            log.warning(
                "agent %s v%s: its spec's billing is not a plan: %s", agent_id, version, exc
            )
            return None
        return None if plan is None else Resolved(Terms(plan, "spec"), spec_version=version)

    def resolve(self, agent_id: str | None) -> Resolved:
        if agent_id not in self._resolved:
            found = None
            if agent_id is not None:
                found = self._stored_terms(agent_id, "agent") or self._spec_terms(agent_id)
            found = found or self._stored_terms(WORKSPACE_SCOPE, "workspace") or Resolved(None)
            self._resolved[agent_id] = found
        return self._resolved[agent_id]

    def terms(self, agent_id: str | None) -> Terms | None:
        return self.resolve(agent_id).terms

    def currency(self, agent_id: str | None) -> str | None:
        """The currency a scope is billed in: its plan's, else (the workspace without a plan
        of its own) the one its stored plans share."""
        terms = self.terms(agent_id)
        if terms is not None:
            return terms.plan.currency
        currencies = {Plan.model_validate(row.plan).currency for row in self._stored.values()}
        return next(iter(currencies)) if len(currencies) == 1 else None


def _resource(row: t.BillingPlan) -> BillingPlan:
    return BillingPlan(
        id=row.id,
        scope=row.scope_key,
        agent_id=row.agent_id,
        plan=Plan.model_validate(row.plan),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _check_agent(session: Session, agent_id: str | None) -> None:
    if agent_id is not None and session.get(t.Agent, agent_id) is None:
        raise NotFound("agent", agent_id)


def held_currencies(session: Session, *, besides_plan: str) -> dict[str, str]:
    """The currency of every stored plan but the one of scope `besides_plan`, and of every
    budget, by what holds it (`plan:<scope>`, `budget:<scope>`)."""
    plans = select(t.BillingPlan).where(t.BillingPlan.scope_key != besides_plan)
    held = {
        f"plan:{row.scope_key}": Plan.model_validate(row.plan).currency
        for row in session.scalars(plans)
    }
    for budget in session.scalars(select(t.Budget)):
        held[f"budget:{budget.scope_key}"] = budget.currency
    return held


def _one_currency(session: Session, scope_key: str, currency: str) -> None:
    differing = {
        holder: held
        for holder, held in held_currencies(session, besides_plan=scope_key).items()
        if held != currency
    }
    if differing:
        raise Conflict(
            f"this workspace bills in {next(iter(differing.values()))}; a plan in {currency} "
            "would split its invoices: change or remove the others first",
            details={"currency": currency, "others": differing},
        )


def set_plan(
    platform: Platform, principal: Principal, agent_id: str | None, plan: Plan
) -> BillingPlan:
    """Set (create or replace) the workspace's plan (`agent_id` None) or an agent's."""
    if agent_id is not None and plan.component("seat_month") is not None:
        raise ValidationFailed(
            "seats are priced by the workspace plan only: remove seat_month from an agent plan",
            details={"component": "seat_month"},
        )
    scope_key = _scope_key(agent_id)
    try:
        with tenant(platform, principal, "billing:write") as session:
            _check_agent(session, agent_id)
            _one_currency(session, scope_key, plan.currency)
            row = session.scalar(select(t.BillingPlan).where(t.BillingPlan.scope_key == scope_key))
            created = row is None
            if row is None:
                row = t.BillingPlan(
                    id=new_id("pln"),
                    workspace_id=principal.workspace_id,
                    agent_id=agent_id,
                    scope_key=scope_key,
                    created_at=utcnow(),
                )
                session.add(row)
            row.plan = plan.model_dump(mode="json")
            row.updated_at = utcnow()
            session.flush()
            record_by(
                session,
                principal,
                "billing.plan_set",
                "billing_plan",
                row.id,
                {"scope": scope_key, "created": created, "plan": row.plan},
            )
            return _resource(row)
    except IntegrityError as exc:  # set concurrently for the same scope: the other one won
        raise Conflict(
            "the plan was set at the same time by another request", details={"scope": scope_key}
        ) from exc


def _stored(session: Session, agent_id: str | None) -> t.BillingPlan:
    scope_key = _scope_key(agent_id)
    row = session.scalar(select(t.BillingPlan).where(t.BillingPlan.scope_key == scope_key))
    if row is None:
        raise NotFound("billing plan", scope_key)
    return row


def get_plan(platform: Platform, principal: Principal, agent_id: str | None) -> BillingPlan:
    with tenant(platform, principal, "billing:read") as session:
        _check_agent(session, agent_id)
        return _resource(_stored(session, agent_id))


def remove_plan(platform: Platform, principal: Principal, agent_id: str | None) -> None:
    """Remove a stored plan: the scope falls back to the next plan that applies."""
    with tenant(platform, principal, "billing:write") as session:
        _check_agent(session, agent_id)
        row = _stored(session, agent_id)
        record_by(
            session,
            principal,
            "billing.plan_removed",
            "billing_plan",
            row.id,
            {"scope": row.scope_key, "plan": row.plan},
        )
        session.delete(row)


def effective_plans(
    platform: Platform, principal: Principal, *, limit: int, cursor: str | None
) -> r.Page[EffectivePlan]:
    """Every agent's effective plan and where it comes from, newest agent first."""
    with tenant(platform, principal, "billing:read") as session:
        book = PlanBook(session)

        def effective(agent: t.Agent) -> EffectivePlan:
            resolved = book.resolve(agent.id)
            return EffectivePlan(
                agent_id=agent.id,
                agent_name=agent.name,
                source=resolved.source,
                plan=resolved.terms.plan if resolved.terms is not None else None,
                plan_id=resolved.plan_id,
                spec_version=resolved.spec_version,
            )

        return paginate(
            session, select(t.Agent), t.Agent.id, limit=limit, cursor=cursor, to_resource=effective
        )
