"""Twilio's request signature (the documented example and an independently computed one), the
TwiML that connects a call's media stream, and the stream token binding it to one call."""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ET

import pytest

from deputy.channels.base import InboundRejected
from deputy.channels.twilio import twilio_signature, verify_twilio_signature
from deputy.channels.voice.twiml import (
    MAX_TOKEN_CHARS,
    StreamGrant,
    connect_stream_twiml,
    issue_stream_token,
    read_stream_token,
)

DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}


def test_the_example_from_twilios_security_guide() -> None:
    assert twilio_signature(DOC_URL, DOC_PARAMS, "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_an_independently_computed_signature() -> None:
    url = "https://deputy.example.org/v1/channels/chn_1/voice"
    params = [("To", "+18005550100"), ("From", "+14155550123"), ("CallSid", "CA9"), ("Body", "")]
    # By hand: URL, then name+value of each parameter sorted by name, HMAC-SHA1, base64.
    payload = (
        url + "Body" + "" + "CallSid" + "CA9" + "From" + "+14155550123" + "To" + "+18005550100"
    )
    expected = base64.b64encode(
        hmac.new(b"s3cret-token", payload.encode(), hashlib.sha1).digest()
    ).decode()
    assert twilio_signature(url, params, "s3cret-token") == expected
    assert twilio_signature(url, dict(params), "s3cret-token") == expected


def test_verification_refuses_anything_twilio_did_not_sign() -> None:
    good = twilio_signature(DOC_URL, DOC_PARAMS, "12345")
    verify_twilio_signature(DOC_URL, DOC_PARAMS, "12345", good)
    for url, params, token, signature in (
        (DOC_URL, {**DOC_PARAMS, "Digits": "9999"}, "12345", good),
        ("https://mycompany.com/myapp.php", DOC_PARAMS, "12345", good),
        (DOC_URL, DOC_PARAMS, "54321", good),
        (DOC_URL, DOC_PARAMS, "12345", good[:-2]),
        (DOC_URL, DOC_PARAMS, "12345", None),
        (DOC_URL, DOC_PARAMS, "12345", "ünïcode"),
    ):
        with pytest.raises(InboundRejected) as refused:
            verify_twilio_signature(url, params, token, signature)
        assert refused.value.status == 403
        assert "12345" not in str(refused.value)


def test_the_twiml_connects_a_stream_and_escapes_what_it_carries() -> None:
    twiml = connect_stream_twiml(
        "wss://voice.example.com/v1/channels/chn_1/media?a=1&b=2",
        {"token": 'abc"<>&def'},
    )
    assert twiml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response>')
    stream = ET.fromstring(twiml).find("./Connect/Stream")  # noqa: S314 (ours)
    assert stream is not None
    assert stream.attrib["url"] == "wss://voice.example.com/v1/channels/chn_1/media?a=1&b=2"
    parameters = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
    assert parameters == {"token": 'abc"<>&def'}


GRANT = StreamGrant(connection_id="chn_1", call_sid="CA1", caller="+14155550123", expires_at=1000.0)


def read(
    token: str | None,
    *,
    connection: str = "chn_1",
    call: str = "CA1",
    now: float = 990.0,
    signing_key: str = "auth",
) -> StreamGrant:
    return read_stream_token(signing_key, token, connection_id=connection, call_sid=call, now=now)


def test_a_stream_token_vouches_for_its_call_and_caller() -> None:
    token = issue_stream_token("auth", GRANT)
    assert read(token) == GRANT
    assert len(token) < MAX_TOKEN_CHARS


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"signing_key": "another-auth-token"}, "not genuine"),
        ({"connection": "chn_2"}, "another call"),
        ({"call": "CA2"}, "another call"),
        ({"now": 1000.5}, "expired"),
    ],
)
def test_a_stream_token_is_refused_elsewhere_or_late(
    change: dict[str, object], reason: str
) -> None:
    token = issue_stream_token("auth", GRANT)
    with pytest.raises(InboundRejected, match=reason) as refused:
        read(token, **change)  # type: ignore[arg-type]
    assert refused.value.status == 403


def test_a_forged_or_malformed_stream_token_is_refused() -> None:
    token = issue_stream_token("auth", GRANT)
    body, _, mac = token.partition(".")
    richer = base64.urlsafe_b64encode(b'{"c":"chn_1","e":9999999999,"f":"+1","s":"CA1"}')
    for forged in (
        None,
        "",
        "no-dot",
        "a.b.c",
        f"{richer.decode().rstrip('=')}.{mac}",  # a later expiry under the old signature
        f"{body}.{mac[:-3]}",
        "!!!.???",
        "x" * (MAX_TOKEN_CHARS + 1),
    ):
        with pytest.raises(InboundRejected):
            read(forged)
