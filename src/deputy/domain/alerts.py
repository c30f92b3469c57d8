"""Alerts, alert targets, SLO status and an agent's status, as callers see them.

An **alert** is something an operator must know (an SLO burning its error budget too fast, a
budget threshold crossed, a failing probe): `firing` until its condition clears or someone
resolves it; a silenced alert stays firing but notifies no one until the silence ends. An
**alert target** is where a workspace's alerts go: a webhook (each POST signed with HMAC-SHA256)
or email addresses (SMTP). Secrets (the webhook's signing secret, the SMTP password) are
write-only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, EmailStr, Field, UrlConstraints

from deputy.domain.budgets import BudgetBurn
from deputy.domain.resources import Body, Resource

AlertKind = Literal["slo_burn", "budget", "probe"]
Severity = Literal["page", "ticket"]
AlertStatus = Literal["firing", "resolved"]
TargetKind = Literal["webhook", "email"]
SmtpSecurity = Literal["none", "starttls", "tls"]
SliName = Literal["availability", "latency", "accuracy"]
HealthState = Literal["ok", "degraded", "down", "idle"]
NotificationEvent = Literal["opened", "resolved", "test"]

TargetName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
WebhookUrl = Annotated[
    AnyHttpUrl, UrlConstraints(max_length=2000, allowed_schemes=["http", "https"])
]
MAX_SILENCE_MINUTES = 30 * 24 * 60


# ---- targets ------------------------------------------------------------------------------


class WebhookTargetConfig(Body):
    """A URL that receives each notification as a signed JSON POST. The secret (required) signs
    it: `X-Deputy-Signature: sha256=<hex HMAC-SHA256(secret, X-Deputy-Timestamp + "." +
    body)>`."""

    url: WebhookUrl


class EmailTargetConfig(Body):
    """Addresses that receive each notification by email, sent through an SMTP server; the
    secret, when set, is the SMTP password."""

    to: list[EmailStr] = Field(min_length=1, max_length=20)
    from_address: EmailStr
    smtp_host: str = Field(min_length=1, max_length=255)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: SmtpSecurity = "starttls"
    smtp_username: str | None = Field(default=None, max_length=255)


TARGET_CONFIGS: dict[TargetKind, type[WebhookTargetConfig] | type[EmailTargetConfig]] = {
    "webhook": WebhookTargetConfig,
    "email": EmailTargetConfig,
}


class AlertTargetCreate(Body):
    name: TargetName
    kind: TargetKind
    config: dict[str, Any] = Field(description="The kind's settings (see the kind's schema).")
    secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="Write-only, encrypted at rest: a webhook's signing secret (required, at "
        "least 16 characters) or an email target's SMTP password.",
    )
    min_severity: Severity = Field(
        default="ticket", description="`page`: only pages reach this target."
    )
    enabled: bool = True


class AlertTargetUpdate(Body):
    """What is given changes: settings are replaced, an empty `secret` removes it."""

    config: dict[str, Any] | None = None
    secret: str | None = Field(default=None, max_length=500)
    min_severity: Severity | None = None
    enabled: bool | None = None


class AlertTarget(Resource):
    id: str
    workspace_id: str
    name: str
    kind: TargetKind
    config: dict[str, Any]
    secret_set: bool = Field(description="Whether a secret is stored (it is never returned).")
    min_severity: Severity
    enabled: bool
    created_at: datetime


class AlertTest(Body):
    target_id: str = Field(min_length=1, max_length=64)


class AlertTestResult(Resource):
    """A test notification's fate: sent now, or why not (nothing is retried)."""

    target_id: str
    sent: bool
    error: str | None = None


# ---- alerts -------------------------------------------------------------------------------


class Alert(Resource):
    id: str
    workspace_id: str
    agent_id: str | None
    key: str = Field(description="What the alert is about; one alert per key fires at a time.")
    kind: AlertKind
    severity: Severity
    status: AlertStatus
    title: str
    details: dict[str, Any]
    silenced_until: datetime | None
    silenced_by: str | None
    opened_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None


class AlertSilence(Body):
    minutes: int = Field(ge=1, le=MAX_SILENCE_MINUTES, description="How long, from now.")
    reason: str = Field(min_length=1, max_length=1000)


class AlertResolve(Body):
    reason: str = Field(min_length=1, max_length=1000)


# ---- SLOs ---------------------------------------------------------------------------------


class SliWindow(Resource):
    """Events over one trailing window and the burn rate they give (null: no events)."""

    window: str
    seconds: int
    good: int
    total: int
    error_ratio: float | None
    burn_rate: float | None


class BurnRuleStatus(Resource):
    """One multiwindow rule: it fires when both windows burn faster than `threshold` and the
    short window has at least `min_events` events."""

    severity: Severity
    long_window: str
    short_window: str
    threshold: float
    long_burn_rate: float | None
    short_burn_rate: float | None
    short_window_events: int
    fires: bool


class SliStatus(Resource):
    """One SLI of an agent over its SLO window: compliance, the error budget left, burn rates
    per window, the rules and the alert firing for it (if any)."""

    sli: SliName
    description: str = Field(description="What counts as a good and as a bad event.")
    objective: float
    window_days: int
    good: int
    total: int
    compliance: float | None = Field(description="good / total; null without events.")
    error_budget: float = Field(description="1 - objective.")
    budget_remaining: float | None = Field(
        description="1 - (bad / total) / (1 - objective): below 0 when overspent; null without "
        "events, or when the objective is 1 and an event was bad."
    )
    windows: list[SliWindow]
    rules: list[BurnRuleStatus]
    firing_severity: Severity | None = Field(description="What the rules say fires now.")
    alert: Alert | None = Field(description="The alert firing for this SLI, if any.")


class AgentSlos(Resource):
    agent_id: str
    deployed: bool
    live_version: int | None
    evaluated_at: datetime
    min_events: int = Field(description="Events a rule's short window needs before it fires.")
    slis: list[SliStatus]


# ---- an agent's status --------------------------------------------------------------------


class ProbeRunSummary(Resource):
    """The latest run of one probe of the agent."""

    probe_id: str
    probe_name: str
    enabled: bool
    run_id: str | None
    status: str | None = Field(description="passed | failed | error; null: never run.")
    started_at: datetime | None
    finished_at: datetime | None
    latency_ms: int | None
    conversation_id: str | None
    agent_version: int | None


class AgentHealth(Resource):
    state: HealthState
    reasons: list[str] = Field(description="Why, in words.")
    deployed: bool
    live_version: int | None
    events_last_hour: int = Field(description="Availability events (turns, probe runs).")
    error_ratio_last_hour: float | None
    last_probe_run: ProbeRunSummary | None


class AgentStatus(Resource):
    """Everything the console shows about a running agent."""

    agent_id: str
    agent_name: str
    evaluated_at: datetime
    health: AgentHealth
    slos: AgentSlos
    budget: list[BudgetBurn] = Field(
        description="The agent's budgets this period (workspace and agent): spend and limit."
    )
    incidents: list[Alert] = Field(description="Recent alerts of the agent, firing first.")
    probes: list[ProbeRunSummary]
