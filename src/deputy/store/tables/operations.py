"""Billing (plans, budgets, disputes, invoices), alerts and their notifications, probes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from deputy.store.tables.base import Base, TenantOwned, utcnow

# --- billing ---


class BillingPlan(TenantOwned, Base):
    """What a workspace (`agent_id` NULL) or one agent pays: `plan` is a `deputy.domain.billing`
    plan as JSON. `scope_key` is the agent id or "workspace" (one plan per scope)."""

    __tablename__ = "billing_plans"
    __table_args__ = (UniqueConstraint("workspace_id", "scope_key"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"))
    scope_key: Mapped[str] = mapped_column(String(40))
    plan: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Budget(TenantOwned, Base):
    """A spending limit per calendar month for the workspace or one agent, with alert
    thresholds (fractions of `amount`) and an optional hard stop on new conversations."""

    __tablename__ = "budgets"
    __table_args__ = (UniqueConstraint("workspace_id", "scope_key"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"))
    scope_key: Mapped[str] = mapped_column(String(40))
    amount: Mapped[str] = mapped_column(String(40))  # a Decimal, exact
    currency: Mapped[str] = mapped_column(String(3))
    alert_thresholds: Mapped[list[float]] = mapped_column(JSON)
    hard_stop: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Dispute(TenantOwned, Base):
    """A contested outcome: `open` until accepted (a reversal event is written, with an audit
    entry) or rejected. One per conversation."""

    __tablename__ = "disputes"
    __table_args__ = (UniqueConstraint("workspace_id", "conversation_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    agent_id: Mapped[str] = mapped_column(String(40), index=True)
    outcome_event_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))  # open | accepted | rejected
    reason: Mapped[str] = mapped_column(Text)
    resolution_note: Mapped[str | None] = mapped_column(Text)
    reversal_event_id: Mapped[str | None] = mapped_column(String(64))
    opened_by: Mapped[str] = mapped_column(String(100))
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]


class Invoice(TenantOwned, Base):
    """An issued invoice for one period and scope: lines (JSON, each with the ids of the usage
    events it sums) and the total, frozen when issued."""

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("workspace_id", "scope_key", "period_start"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"))
    scope_key: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[str] = mapped_column(String(40))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- alerts, SLOs and probes ---


class Alert(TenantOwned, Base):
    """Something an operator must know: an SLO burning its error budget too fast, a budget
    threshold crossed, a failing probe. `open_key` is `key` while firing and NULL once resolved,
    so one alert per key is open at a time; a silenced alert stays open but notifies no one."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "open_key"),
        Index("ix_alerts_status", "workspace_id", "status", "opened_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str | None] = mapped_column(String(40), index=True)
    key: Mapped[str] = mapped_column(String(200))
    open_key: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # slo_burn | budget | probe
    severity: Mapped[str] = mapped_column(String(10))  # page | ticket
    status: Mapped[str] = mapped_column(String(20))  # firing | resolved
    title: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict[str, Any]]
    silenced_until: Mapped[datetime | None]
    silenced_by: Mapped[str | None] = mapped_column(String(100))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))


class AlertTarget(TenantOwned, Base):
    """Where a workspace's alerts go: a webhook (HMAC-signed with an encrypted secret) or email
    addresses."""

    __tablename__ = "alert_targets"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # webhook | email
    config: Mapped[dict[str, Any]]
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    min_severity: Mapped[str] = mapped_column(String(10), default="ticket")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertNotification(TenantOwned, Base):
    """One message about an alert to one target, written in the transaction that opened or
    resolved the alert and sent from there with retries (an outbox)."""

    __tablename__ = "alert_notifications"
    __table_args__ = (
        UniqueConstraint("alert_id", "target_id", "event"),
        Index("ix_alert_notifications_due", "status", "next_attempt_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"), index=True)
    target_id: Mapped[str] = mapped_column(ForeignKey("alert_targets.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(20))  # opened | resolved
    status: Mapped[str] = mapped_column(String(20))  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class Probe(TenantOwned, Base):
    """A synthetic customer run on a schedule against an agent's production deployment:
    `scenario` is a scripted sandbox scenario (turns and assertions) as JSON."""

    __tablename__ = "probes"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(40))
    scenario: Mapped[dict[str, Any]]
    interval_seconds: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(default=True)
    next_run_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProbeRun(TenantOwned, Base):
    """One run of a probe: the production conversation it had and whether it passed."""

    __tablename__ = "probe_runs"
    __table_args__ = (Index("ix_probe_runs_probe", "probe_id", "started_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    probe_id: Mapped[str] = mapped_column(ForeignKey("probes.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(String(40), index=True)
    agent_version: Mapped[int | None] = mapped_column(Integer)
    conversation_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))  # passed | failed | error
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
