"""Alert notifications without I/O: the webhook signature and headers, what a webhook answer
means, the email's subject and parts, and when a failed notification is tried again."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from deputy.channels.base import DeliveryFailed
from deputy.domain import alerts as a
from deputy.services.alert_delivery import MAX_ATTEMPTS, next_attempt
from deputy.services.alert_messages import (
    compose_email,
    notification_payload,
    permanent_status,
    post_webhook,
    signature,
    signed_request,
    subject,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def alert(**changes: object) -> a.Alert:
    data: dict[str, object] = {
        "id": "alr_1",
        "workspace_id": "ws_1",
        "agent_id": "agt_1",
        "key": "slo:agt_1:availability:page",
        "kind": "slo_burn",
        "severity": "page",
        "status": "firing",
        "title": "support: availability burns",
        "details": {"windows": {"5m": {"good": 1, "total": 20}}},
        "silenced_until": None,
        "silenced_by": None,
        "opened_at": NOW,
        "resolved_at": None,
        "resolved_by": None,
    }
    data.update(changes)
    return a.Alert.model_validate(data)


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"a":1}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("s3cret", "1700000000", body) == f"sha256={expected}"
    assert signature("other", "1700000000", body) != signature("s3cret", "1700000000", body)
    assert signature("s3cret", "1700000001", body) != signature("s3cret", "1700000000", body)


def test_a_signed_request_carries_what_a_receiver_checks() -> None:
    payload = notification_payload(alert(), "opened", "ntf_1", "https://deputy.example.com/")
    headers, body = signed_request(payload, "s3cret", NOW)
    assert headers["X-Deputy-Event"] == "alert.opened"
    assert headers["X-Deputy-Delivery"] == "ntf_1"
    assert headers["X-Deputy-Timestamp"] == str(int(NOW.timestamp()))
    mac = hmac.new(b"s3cret", headers["X-Deputy-Timestamp"].encode() + b"." + body, "sha256")
    assert hmac.compare_digest(headers["X-Deputy-Signature"], f"sha256={mac.hexdigest()}")
    sent = json.loads(body)
    assert sent["id"] == "alr_1" and sent["severity"] == "page" and sent["status"] == "firing"
    assert sent["link"] == "/v1/agents/agt_1/status"
    assert sent["url"] == "https://deputy.example.com/v1/agents/agt_1/status"
    assert sent["details"] == {"windows": {"5m": {"good": 1, "total": 20}}}


def test_an_alert_without_an_agent_links_nowhere() -> None:
    payload = notification_payload(alert(agent_id=None), "resolved", "ntf_2", None)
    assert payload["link"] is None and payload["url"] is None


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (400, True),
        (401, True),
        (404, True),
        (410, True),
        (408, False),
        (429, False),
        (500, False),
        (502, False),
        (503, False),
    ],
)
def test_which_refusals_are_permanent(status: int, permanent: bool) -> None:
    assert permanent_status(status) is permanent


def test_a_webhook_answer_decides_sent_retry_or_give_up() -> None:
    asyncio.run(_answers_decide())


async def _answers_decide() -> None:
    answers = iter([200, 503, 404])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(answers), text="nope")

    payload = notification_payload(alert(), "opened", "ntf_1", None)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        await post_webhook(client, "https://hooks.example.com/x", "s3cret", payload)
        with pytest.raises(DeliveryFailed, match="answered 503: nope") as retried:
            await post_webhook(client, "https://hooks.example.com/x", "s3cret", payload)
        assert not retried.value.permanent
        with pytest.raises(DeliveryFailed, match="answered 404") as refused:
            await post_webhook(client, "https://hooks.example.com/x", "s3cret", payload)
        assert refused.value.permanent
        with pytest.raises(DeliveryFailed, match="no signing secret") as unsigned:
            await post_webhook(client, "https://hooks.example.com/x", None, payload)
        assert unsigned.value.permanent
    assert len(seen) == 3
    assert seen[0].headers["X-Deputy-Signature"].startswith("sha256=")


def test_subjects() -> None:
    assert subject(alert(), "opened") == "[FIRING page] support: availability burns"
    assert subject(alert(severity="ticket"), "opened").startswith("[FIRING ticket] ")
    assert subject(alert(status="resolved"), "resolved") == "[RESOLVED] support: availability burns"
    assert subject(alert(), "test").startswith("[TEST] ")


def test_the_email_has_text_and_html() -> None:
    config = a.EmailTargetConfig(
        to=["oncall@example.com"], from_address="deputy@example.com", smtp_host="mail"
    )
    title = "support: <availability> & more"
    email = compose_email(config, "oncall@example.com", alert(title=title), "opened", None)
    assert email["To"] == "oncall@example.com"
    assert email["Subject"] == f"[FIRING page] {title}"
    text = email.get_body(("plain",))
    html = email.get_body(("html",))
    assert text is not None and html is not None
    assert "slo:agt_1:availability:page" in text.get_content()
    assert "&lt;availability&gt; &amp; more" in html.get_content()


def test_backoff_doubles_then_gives_up() -> None:
    waits = [next_attempt(n, False, NOW) for n in range(1, MAX_ATTEMPTS)]
    assert [w - NOW for w in waits[:4] if w] == [timedelta(seconds=s) for s in (2, 4, 8, 16)]
    assert all(w is not None and w - NOW <= timedelta(minutes=5) for w in waits)
    assert next_attempt(MAX_ATTEMPTS, False, NOW) is None
    assert next_attempt(1, True, NOW) is None
