"""Synthetic probes through the API on a real database: a probe against a deployed agent passes;
the agent broken (a version without the fact deployed, its model down) fails or errors the
probe and opens its alert with a notification for the workspace's target; fixed, the next run
passes and resolves the alert. Probe conversations are real, marked and never billed; tool
expectations are read from the production ledger; timeouts are errors; creation refuses what a
probe cannot check; other workspaces and narrower keys reach nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select

from deputy.store import tables as t
from tests.integration.conftest import Api
from tests.integration.probe_agent import (
    BAD_HOURS,
    GOOD_HOURS,
    Switch,
    add_alert_target,
    deploy,
    hours_agent,
    request,
)

pytestmark = pytest.mark.integration

NOTE_ASSERTIONS = {
    "expected_tool_calls": [{"tool": "note", "arguments": {"fact": "the customer likes blue"}}],
    "forbidden_tool_calls": [{"tool": "note", "arguments": {"fact": "the card number"}}],
}


def probe_body(agent_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agent_id": agent_id,
        "name": "opening hours",
        "scenario": {
            "script": ["When are you open?"],
            "assertions": {"must_communicate": [GOOD_HOURS]},
        },
        "interval_seconds": 60,
        "enabled": False,  # runs only when the test says: the scheduler leaves it alone
    }
    body.update(changes)
    return body


def run(api: Api, probe_id: str, key: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = request(api, "POST", f"/v1/probes/{probe_id}/run", key=key)
    return result


def alerts_of(api: Api, probe_id: str) -> list[t.Alert]:
    with api.platform.db.session() as session:
        return list(
            session.scalars(
                select(t.Alert).where(t.Alert.key == f"probe:{probe_id}").order_by(t.Alert.id)
            )
        )


def notifications(api: Api, alert_id: str) -> list[tuple[str, str]]:
    with api.platform.db.session() as session:
        rows = session.scalars(
            select(t.AlertNotification).where(t.AlertNotification.alert_id == alert_id)
        )
        return sorted((row.event, row.target_id) for row in rows)


def test_a_failing_probe_alerts_and_the_fix_resolves_it(api: Api) -> None:
    switch = Switch()
    agent_id = hours_agent(api, switch)
    target = add_alert_target(api)
    probe = request(api, "POST", "/v1/probes", probe_body(agent_id))
    assert probe["scenario"]["customer"]["persona"]  # filled in for a scripted probe

    healthy = run(api, probe["id"])
    assert healthy["status"] == "passed", healthy
    assert healthy["agent_version"] == 1 and healthy["deployment_arm"] == "live"
    assert healthy["turns"][0]["reply"] == f"We are open {GOOD_HOURS}."
    assert healthy["checks"] == [
        {"kind": "communicate", "passed": True, "detail": f"said '{GOOD_HOURS}' (turn 1)",
         "reasoning": None}
    ]  # fmt: skip
    assert healthy["alert"] is None and alerts_of(api, probe["id"]) == []

    deploy(api, agent_id, 2)  # the broken version: it answers without the hours
    broken = run(api, probe["id"])
    assert broken["status"] == "failed", broken
    assert broken["agent_version"] == 2
    assert broken["reason"] == f"never said '{GOOD_HOURS}'"
    assert broken["turns"][0]["reply"] == f"We are open {BAD_HOURS}."
    [alert] = alerts_of(api, probe["id"])
    assert (alert.kind, alert.severity, alert.status) == ("probe", "ticket", "firing")
    assert alert.agent_id == agent_id and alert.details["run_id"] == broken["id"]
    assert broken["alert"] == {"id": alert.id, "change": "opened", "severity": "ticket"}
    assert notifications(api, alert.id) == [("opened", target)]

    again = run(api, probe["id"])  # still broken: the same alert, no second notification
    assert again["status"] == "failed"
    assert again["alert"] == {"id": alert.id, "change": "still_firing", "severity": "ticket"}
    assert notifications(api, alert.id) == [("opened", target)]

    deploy(api, agent_id, 1)  # fixed: the good version is live again
    fixed = run(api, probe["id"])
    assert fixed["status"] == "passed", fixed
    assert fixed["alert"] == {"id": alert.id, "change": "resolved", "severity": "ticket"}
    [resolved] = alerts_of(api, probe["id"])
    assert (resolved.status, resolved.resolved_by) == ("resolved", "system:probe")
    assert notifications(api, alert.id) == [("opened", target), ("resolved", target)]

    runs = request(api, "GET", f"/v1/probes/{probe['id']}/runs")["data"]
    assert [r["status"] for r in runs] == ["passed", "failed", "failed", "passed"]
    failed = request(api, "GET", f"/v1/probes/{probe['id']}/runs?status=failed&limit=1")
    assert [r["id"] for r in failed["data"]] == [again["id"]] and failed["next_cursor"]


def test_a_model_outage_is_an_error_that_pages_and_recovery_resolves_it(api: Api) -> None:
    switch = Switch()
    agent_id = hours_agent(api, switch)
    target = add_alert_target(api)
    probe = request(api, "POST", "/v1/probes", probe_body(agent_id))

    deploy(api, agent_id, 2)
    failed = run(api, probe["id"])
    assert failed["status"] == "failed"
    switch.down = True
    down = run(api, probe["id"])
    assert down["status"] == "error", down
    assert "model" in down["reason"] and down["checks"] == []
    assert down["turns"][0]["status"] == "model_failed"
    ticket, page = alerts_of(api, probe["id"])  # the failure's ticket escalated to a page
    assert (ticket.severity, ticket.status) == ("ticket", "resolved")
    assert (page.severity, page.status, page.details["escalated_from"]) == (
        "page",
        "firing",
        ticket.id,
    )
    assert down["alert"] == {"id": page.id, "change": "escalated", "severity": "page"}
    assert notifications(api, page.id) == [("opened", target)]

    switch.down = False
    deploy(api, agent_id, 1)
    recovered = run(api, probe["id"])
    assert recovered["status"] == "passed", recovered
    assert recovered["alert"] == {"id": page.id, "change": "resolved", "severity": "page"}
    assert [a.status for a in alerts_of(api, probe["id"])] == ["resolved", "resolved"]
    assert notifications(api, page.id) == [("opened", target), ("resolved", target)]


def test_the_probe_conversation_is_real_marked_and_never_billed(api: Api) -> None:
    agent_id = hours_agent(api, Switch())
    probe = request(api, "POST", "/v1/probes", probe_body(agent_id))
    done = run(api, probe["id"])
    conversation = request(api, "GET", f"/v1/conversations/{done['conversation_id']}")
    assert conversation["status"] == "closed" and conversation["channel"] == "api"
    assert conversation["outcome"] == done["outcome"]
    transcript = request(api, "GET", f"/v1/conversations/{done['conversation_id']}/transcript")
    said = [(e["kind"], e["text"]) for e in transcript["entries"] if "message" in e["kind"]]
    assert said == [
        ("customer_message", "When are you open?"),
        ("agent_message", f"We are open {GOOD_HOURS}."),
    ]
    with api.platform.db.session() as session:
        row = session.get_one(t.Conversation, done["conversation_id"])
        assert row.meta["probe_id"] == probe["id"]
        customer = session.get_one(t.Customer, row.customer_id)
        assert customer.external_id == f"probe:{probe['id']}"
        kinds = set(
            session.scalars(
                select(t.UsageEventRow.kind).where(
                    t.UsageEventRow.conversation_id == done["conversation_id"]
                )
            )
        )
    assert not kinds & {"conversation", "outcome"}
    assert "model_call" in kinds  # the model calls are metered as usual
    normal = request(api, "POST", "/v1/conversations", {"agent_id": agent_id})
    with api.platform.db.session() as session:
        billed = session.scalars(
            select(t.UsageEventRow.kind).where(t.UsageEventRow.conversation_id == normal["id"])
        ).all()
    assert "conversation" in billed  # the same agent's real conversations are


def test_tool_expectations_are_read_from_the_production_ledger(api: Api) -> None:
    agent_id = hours_agent(api, Switch())
    scenario = {"script": ["remember the customer likes blue"], "assertions": NOTE_ASSERTIONS}
    good = request(api, "POST", "/v1/probes", probe_body(agent_id, name="notes", scenario=scenario))
    passed = run(api, good["id"])
    assert passed["status"] == "passed", passed
    details = sorted((c["kind"], c["passed"], c["detail"]) for c in passed["checks"])
    assert details == [
        ("action", True, 'expected note(fact="the customer likes blue") — called (turn 1)'),
        ("forbidden_action", True, 'forbidden note(fact="the card number") — never succeeded'),
    ]
    with api.platform.db.session() as session:
        ledger = session.scalars(
            select(t.ToolCallRow).where(t.ToolCallRow.conversation_id == passed["conversation_id"])
        ).all()
    assert [(row.tool, row.status) for row in ledger] == [("note", "succeeded")]

    leaky = {"script": ["remember the card number"], "assertions": NOTE_ASSERTIONS}
    bad = request(api, "POST", "/v1/probes", probe_body(agent_id, name="leak", scenario=leaky))
    failed = run(api, bad["id"])
    assert failed["status"] == "failed"
    assert failed["reason"] == (
        'expected note(fact="the customer likes blue") — called with other arguments: '
        'fact="the card number"; forbidden note(fact="the card number") — succeeded (turn 1)'
    )


def test_a_turn_that_does_not_finish_in_time_is_an_error(api: Api) -> None:
    switch = Switch()
    agent_id = hours_agent(api, switch)
    probe = request(api, "POST", "/v1/probes", probe_body(agent_id, turn_timeout_seconds=0.2))
    switch.stalled.set()
    try:
        slow = run(api, probe["id"])
    finally:
        switch.stalled.clear()
    assert slow["status"] == "error"
    assert slow["reason"] == "turn 1: no reply within 0.2 s"
    assert [(turn["status"], turn["reply"]) for turn in slow["turns"]] == [("timed_out", None)]
    assert slow["alert"]["severity"] == "page"
    deadline = time.monotonic() + 60  # the stalled turn still finishes, after the run
    while not any(
        e["kind"] == "agent_message"
        for e in request(api, "GET", f"/v1/conversations/{slow['conversation_id']}/transcript")[
            "entries"
        ]
    ):
        assert time.monotonic() < deadline, "the stalled turn never finished"
        time.sleep(0.05)


def test_a_probe_of_an_agent_without_a_deployment_on_its_channel_errors(api: Api) -> None:
    on_chat = hours_agent(api, Switch(), channel="chat")
    probe = request(api, "POST", "/v1/probes", probe_body(on_chat, name="api"))
    errored = run(api, probe["id"])
    assert errored["status"] == "error" and errored["conversation_id"] is None
    assert errored["reason"] == "the agent is not deployed on channel 'api' (deployed on: chat)"
    assert errored["alert"]["change"] == "opened" and errored["alert"]["severity"] == "page"
    on_chat_probe = request(
        api, "POST", "/v1/probes", probe_body(on_chat, name="chat", channel="chat")
    )
    assert run(api, on_chat_probe["id"])["status"] == "passed"

    never = hours_agent(api, Switch(), channel=None)
    probe = request(api, "POST", "/v1/probes", probe_body(never, name="never deployed"))
    errored = run(api, probe["id"])
    assert errored["status"] == "error"
    assert errored["reason"] == "the agent has no deployment: a probe tests a production deployment"
