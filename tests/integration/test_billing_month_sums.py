"""The month sums budgets are checked against, kept incrementally per process, on a real
database: at every moment they equal the sums of the events themselves, whether events settle,
commit late (written with an id minted up to a minute earlier), reverse outcomes of this month
or an earlier one, or belong to another workspace; a new month starts over."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select

from deputy.billing.event_lookup import usage_id_floor
from deputy.billing.month_sums import SETTLE, MonthSums, SumKey
from deputy.billing.periods import period_at
from deputy.store import tables as t
from tests.integration.conftest import Api
from tests.integration.usage_helpers import workspace_id

pytestmark = pytest.mark.integration

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
COMPONENT = {
    ("outcome", "resolved"): "resolved_outcome",
    ("outcome", "escalated"): "escalated_outcome",
    ("conversation", None): "conversation",
    ("model_call", None): "tokens_1k",
    ("voice_minutes", None): "voice_minute",
    ("tool_call", None): "tool_call",
    ("seat", None): "seat_month",
}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Events:
    """Usage events written straight to the table with the id `new_id` would have minted at a
    chosen moment."""

    def __init__(self, api: Api, workspace: str) -> None:
        self.api, self.workspace = api, workspace
        self.rng = random.Random(7)
        self.count = 0

    def add(self, minted: datetime, occurred: datetime, kind: str, quantity: str = "1",
            **fields: Any) -> str:  # fmt: skip
        self.count += 1
        event_id = fields.pop("event_id", f"test:{self.count}")
        suffix = "".join(self.rng.choice(CROCKFORD) for _ in range(16))
        row = {
            "id": usage_id_floor(minted)[:-16] + suffix,
            "event_id": event_id,
            "workspace_id": fields.pop("workspace_id", self.workspace),
            "kind": kind,
            "quantity": quantity,
            "unit": "call",
            "data": {},
            "occurred_at": occurred,
            "recorded_at": minted,
            **fields,
        }
        with self.api.platform.db.session() as session:
            session.execute(insert(t.UsageEventRow), [row])
        return event_id


def truth(api: Api, workspace: str, now: datetime) -> dict[SumKey, Decimal]:
    """The sums computed here from every event of the month minted by `now` (the test's clock:
    the real ones, e.g. the owner's seat, may be minted after it)."""
    period = period_at(now)
    minted_by = usage_id_floor(now + SETTLE)
    with api.platform.db.tenant_session(workspace) as session:
        rows = session.scalars(select(t.UsageEventRow)).all()
        occurred = {row.event_id: row.occurred_at for row in rows}
        sums: dict[SumKey, Decimal] = {}
        for row in rows:
            if not period.start <= row.occurred_at < period.end or row.id >= minted_by:
                continue
            earlier = None
            if row.kind == "outcome_reversal":
                component = COMPONENT.get(("outcome", row.subject))
                at = occurred[row.reverses_event_id or ""]
                earlier = f"{at:%Y-%m}" if at < period.start else None
            else:
                component = COMPONENT.get(
                    (row.kind, row.subject if row.kind == "outcome" else None)
                )
            if component is None:
                continue
            key: SumKey = (row.agent_id, component, earlier)  # type: ignore[assignment]
            sums[key] = sums.get(key, Decimal(0)) + Decimal(row.quantity)
    return sums


@pytest.fixture
def setup(api: Api) -> tuple[Api, str, Events, Clock, MonthSums]:
    workspace = workspace_id(api)
    middle = period_at(datetime.now(UTC)).start + timedelta(days=14, hours=3)
    clock = Clock(middle)
    return api, workspace, Events(api, workspace), clock, MonthSums(clock)


def sums_now(api: Api, workspace: str, clock: Clock, month: MonthSums) -> dict[SumKey, Decimal]:
    with api.platform.db.tenant_session(workspace) as session:
        found = month.sums(session, workspace, period_at(clock.now))
    return nonzero(found)


def nonzero(sums: dict[SumKey, Decimal]) -> dict[SumKey, Decimal]:
    return {key: value for key, value in sums.items() if value != 0}


def test_the_sums_follow_the_events_as_they_settle_and_commit_late(
    setup: tuple[Api, str, Events, Clock, MonthSums],
) -> None:
    api, workspace, events, clock, month = setup
    now = clock.now
    start = period_at(now).start
    last_month = start - timedelta(days=10)
    old_outcome = events.add(last_month, last_month, "outcome", agent_id="agt_a",
                             subject="resolved")  # fmt: skip
    outcome = events.add(now - timedelta(hours=5), now - timedelta(hours=5), "outcome",
                         agent_id="agt_a", subject="resolved")  # fmt: skip
    for hours in (30, 20, 3):
        at = now - timedelta(hours=hours)
        events.add(at, at, "conversation", agent_id="agt_a")
        events.add(at, at, "model_call", str(100 * hours), agent_id="agt_b")
        events.add(at, at, "voice_minutes", "1.016667", agent_id="agt_b")
    events.add(now - timedelta(hours=2), now - timedelta(hours=2), "seat", subject="mem_1")
    events.add(now - timedelta(seconds=10), now - timedelta(seconds=10), "tool_call",
               agent_id="agt_a", subject="lookup")  # fmt: skip  # recent: not settled yet
    neighbour = _other_workspace(api)
    for seconds in (3600, 10):  # settled and recent events of another workspace: never counted
        at = now - timedelta(seconds=seconds)
        events.add(at, at, "conversation", workspace_id=neighbour, agent_id="agt_x")
    assert sums_now(api, workspace, clock, month) == nonzero(truth(api, workspace, now))

    # a reversal of this month's outcome nets out; one of last month's is a credit
    events.add(now - timedelta(seconds=5), now - timedelta(seconds=5), "outcome_reversal", "-1",
               agent_id="agt_a", subject="resolved", reverses_event_id=outcome)  # fmt: skip
    events.add(now - timedelta(seconds=5), now - timedelta(seconds=5), "outcome_reversal", "-1",
               agent_id="agt_a", subject="resolved", reverses_event_id=old_outcome)  # fmt: skip
    found = sums_now(api, workspace, clock, month)
    assert found == nonzero(truth(api, workspace, now))
    assert ("agt_a", "resolved_outcome", None) not in found  # 1 - 1
    assert found[("agt_a", "resolved_outcome", f"{last_month:%Y-%m}")] == -1

    # time passes: what was recent settles; an event minted 30 s before the last check but
    # committed only now (a slow transaction) is still counted
    events.add(now - timedelta(seconds=30), now - timedelta(seconds=30), "conversation",
               agent_id="agt_b")  # fmt: skip
    clock.now = now + 2 * SETTLE
    assert sums_now(api, workspace, clock, month) == nonzero(truth(api, workspace, clock.now))
    events.add(clock.now - timedelta(seconds=50), clock.now - timedelta(seconds=50),
               "model_call", "999", agent_id="agt_b")  # fmt: skip
    clock.now += timedelta(hours=1)
    assert sums_now(api, workspace, clock, month) == nonzero(truth(api, workspace, clock.now))

    # a new month starts from nothing but its own events
    clock.now = period_at(now).end + timedelta(hours=1)
    events.add(clock.now - timedelta(minutes=30), clock.now - timedelta(minutes=30),
               "conversation", agent_id="agt_a")  # fmt: skip
    assert (
        sums_now(api, workspace, clock, month)
        == {("agt_a", "conversation", None): Decimal(1)}
        == nonzero(truth(api, workspace, clock.now))
    )


def _other_workspace(api: Api) -> str:
    other, _ = api.new_workspace("Neighbour")
    return other
