"""Redaction of credentials from tool call records."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deputy.tools.redaction import REDACTED, Redactor, looks_secret


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "Password",
        "user_password",
        "clientSecret",
        "client_secret",
        "api_key",
        "apiKey",
        "X-API-Key",
        "access_token",
        "refreshToken",
        "Authorization",
        "Proxy-Authorization",
        "X-Auth-Token",
        "private_key",
        "Set-Cookie",
        "credentials",
    ],
)
def test_secret_looking_names(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize(
    "name",
    ["max_tokens", "token_count", "token_type", "secretary", "keyboard", "Idempotency-Key", "id"],
)
def test_ordinary_names(name: str) -> None:
    assert not looks_secret(name)


def test_sensitive_headers_keep_their_name_but_lose_their_value() -> None:
    redactor = Redactor.of(names=["X-Shop-Key"])
    headers = redactor.headers(
        [
            ("Authorization", "Bearer abc.def"),
            ("Cookie", "session=1"),
            ("X-Shop-Key", "k-123456"),
            ("X-API-Key", "k2"),
            ("Content-Type", "application/json"),
            ("Idempotency-Key", "idem-1"),
        ]
    )
    assert headers == {
        "authorization": REDACTED,
        "cookie": REDACTED,
        "x-shop-key": REDACTED,
        "x-api-key": REDACTED,
        "content-type": "application/json",
        "idempotency-key": "idem-1",
    }


def test_repeated_headers_are_joined() -> None:
    headers = Redactor().headers([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Via", "x")])
    assert headers == {"set-cookie": f"{REDACTED}, {REDACTED}", "via": "x"}


def test_known_secrets_are_replaced_inside_any_string() -> None:
    redactor = Redactor.of(secrets=["s3cr3t-value", "tok_ABCDEF"])
    assert redactor.text("key=s3cr3t-value; again s3cr3t-value") == (
        f"key={REDACTED}; again {REDACTED}"
    )
    assert redactor.headers({"X-Debug": "sent tok_ABCDEF"}) == {"x-debug": f"sent {REDACTED}"}


def test_overlapping_secrets_replace_the_longest_first() -> None:
    redactor = Redactor.of(secrets=["abcd", "abcdefgh"])
    assert redactor.text("xxabcdefghxx") == f"xx{REDACTED}xx"


def test_very_short_secrets_are_not_substituted() -> None:
    # A three-character "secret" would wreck every record it touched.
    assert Redactor.of(secrets=["abc"]).text("abcabc") == "abcabc"


def test_url_query_parameters_and_user_info() -> None:
    redactor = Redactor.of(secrets=["k-98765"], names=["key"])
    url = redactor.url("https://user:pw@api.example.com/v1/orders?key=k-98765&page=2&token=t1")
    assert url == (
        f"https://{REDACTED}@api.example.com/v1/orders?key={REDACTED}&page=2&token={REDACTED}"
    )
    assert Redactor.of(secrets=["k-98765"]).url("https://h/p/k-98765") == f"https://h/p/{REDACTED}"


def test_json_fields_with_secret_names_are_replaced_at_any_depth() -> None:
    redactor = Redactor.of(secrets=["hunter22"])
    body: dict[str, Any] = {
        "user": {"name": "ann", "password": "x", "profile": {"apiKey": "k", "note": "hunter22"}},
        "items": [{"client_secret": "c", "qty": 2}],
        "max_tokens": 10,
        "token": None,
    }
    assert redactor.json(body) == {
        "user": {
            "name": "ann",
            "password": REDACTED,
            "profile": {"apiKey": REDACTED, "note": REDACTED},
        },
        "items": [{"client_secret": REDACTED, "qty": 2}],
        "max_tokens": 10,
        "token": None,
    }
    assert body["user"]["password"] == "x", "the input is not modified"


def test_values_only_replaces_known_secrets() -> None:
    redactor = Redactor.of(secrets=["tok_live_123"])
    output = {"next_page_token": "p2", "echo": "Bearer tok_live_123", "n": [1, "tok_live_123"]}
    assert redactor.values(output) == {
        "next_page_token": "p2",
        "echo": f"Bearer {REDACTED}",
        "n": [1, REDACTED],
    }


def test_merged_redactors_hide_both() -> None:
    merged = Redactor.of(secrets=["first-secret"]).merged(Redactor.of(["second-secret"], ["K"]))
    text = json.dumps(merged.json({"a": "first-secret second-secret"}))
    assert 'secret"' not in text and "first-secret" not in text and "second-secret" not in text
    assert merged.headers({"k": "v"}) == {"k": REDACTED}
