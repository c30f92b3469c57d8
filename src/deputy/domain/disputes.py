"""Disputes as callers see them: a customer contests the outcome a conversation was billed
for; accepting the dispute reverses the outcome's charge with an `outcome_reversal` usage
event (audited), rejecting it leaves the charge."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from deputy.domain.resources import Body, Resource

DisputeStatus = Literal["open", "accepted", "rejected"]


class DisputeOpen(Body):
    conversation_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)


class DisputeDecision(Body):
    note: str = Field(default="", max_length=2000)


class Dispute(Resource):
    id: str
    conversation_id: str
    agent_id: str
    outcome_event_id: str
    status: DisputeStatus
    reason: str
    resolution_note: str | None
    reversal_event_id: str | None = Field(description="The reversal an acceptance wrote.")
    opened_by: str
    resolved_by: str | None
    opened_at: datetime
    resolved_at: datetime | None
