"""Widget session tokens: signed claims that survive a round trip and nothing else (a changed
payload or signature, another platform's key, an expired or malformed token), and the rule that
a widget key holds `widget:sessions` alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from deputy.config import Settings, load_settings
from deputy.domain.errors import Unauthenticated
from deputy.domain.tenancy import ALL_SCOPES
from deputy.services.keys import grantable_scopes
from deputy.services.widget_sessions import (
    SESSION_TOKEN_PREFIX,
    SessionClaims,
    issue_token,
    read_token,
)

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
CLAIMS = SessionClaims(
    workspace_id="ws_01J00000000000000000000000",
    agent_id="agt_01J00000000000000000000000",
    conversation_id="cnv_01J00000000000000000000000",
    key_id="key_01J00000000000000000000000",
    expires_at=NOW + timedelta(hours=1),
)


SECRET_KEY = "a-long-random-secret-key-for-the-tests-0123456789"


def settings(secret: str = SECRET_KEY) -> Settings:
    return load_settings(secret_key=secret)


def test_a_token_carries_its_claims_back() -> None:
    token = issue_token(settings(), CLAIMS)
    assert token.startswith(SESSION_TOKEN_PREFIX)
    assert read_token(settings(), token, now=NOW) == CLAIMS
    # Safe in a URL and as a WebSocket subprotocol value.
    assert all(c.isalnum() or c in "_-." for c in token)


def test_an_expired_token_is_refused() -> None:
    token = issue_token(settings(), CLAIMS)
    with pytest.raises(Unauthenticated, match="expired"):
        read_token(settings(), token, now=CLAIMS.expires_at)


def test_a_token_of_another_platform_is_refused() -> None:
    token = issue_token(settings(), CLAIMS)
    with pytest.raises(Unauthenticated, match="invalid"):
        read_token(settings("another-platforms-secret-key-9876543210-abcdefgh"), token, now=NOW)


def test_a_changed_payload_or_signature_is_refused() -> None:
    token = issue_token(settings(), CLAIMS)
    body, _, signature = token.partition(".")
    other = issue_token(settings(), replace(CLAIMS, conversation_id="cnv_x"))
    swapped = other.partition(".")[0] + "." + signature
    chopped = body + "." + signature[:-1]
    for forged in (swapped, chopped, body + ".", token + "x"):
        with pytest.raises(Unauthenticated):
            read_token(settings(), forged, now=NOW)


@pytest.mark.parametrize(
    "token", ["dpw_", "dpw_abc", "dpw_.sig", "dpw_\u00e9\u00e9.x", "dpy_key_x_y", ""]
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(Unauthenticated):
        read_token(settings(), token, now=NOW)


def test_a_signed_payload_that_is_not_json_is_refused() -> None:
    import base64
    import hashlib
    import hmac

    from deputy.services.widget_sessions import _signing_key

    body = base64.urlsafe_b64encode(b"not json").rstrip(b"=").decode()
    mac = hmac.new(_signing_key(settings()), f"dpw_{body}".encode(), hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated, match="malformed"):
        read_token(settings(), f"dpw_{body}.{signature}", now=NOW)


def test_a_widget_key_holds_its_scope_alone() -> None:
    widget = frozenset({"widget:sessions"})
    assert grantable_scopes("channel", None, widget) == widget
    mixed = frozenset({"widget:sessions", "conversations:read"})
    assert grantable_scopes("channel", None, mixed) == {"conversations:read"}
    assert "widget:sessions" not in grantable_scopes("channel", None, frozenset(ALL_SCOPES))
