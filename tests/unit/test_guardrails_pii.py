"""PII detection and masking: each kind, its look-alikes, and the placeholders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deputy.guardrails.pii import (
    detect_pii,
    iban_valid,
    luhn_valid,
    mask_pii,
    normalise,
)

DATA = Path(os.environ.get("DEPUTY_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
RETAIL = DATA / "data/tau2-bench/data/tau2/domains/retail"


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("write to yusuf.rossi7301@example.com today", "email", "yusuf.rossi7301@example.com"),
        ("call (977) 625-2661 please", "phone", "(977) 625-2661"),
        ("my number is +44 20 7946 0958", "phone", "+44 20 7946 0958"),
        ("ring +55 11 98765-4321", "phone", "+55 11 98765-4321"),
        ("phone number: 5551234567", "phone", "5551234567"),
        ("Mi teléfono es 612 345 678", "phone", "612 345 678"),
        ("card 4111 1111 1111 1111 ok", "card", "4111 1111 1111 1111"),
        ("amex 378282246310005", "card", "378282246310005"),
        ("IBAN DE89 3704 0044 0532 0130 00 thanks", "iban", "DE89 3704 0044 0532 0130 00"),
        ("IBAN GB82WEST12345698765432", "iban", "GB82WEST12345698765432"),
        ("SSN 123-45-6789", "ssn", "123-45-6789"),
        ("my ssn is 123456789", "ssn", "123456789"),
        ("from 192.168.1.20 yesterday", "ip_address", "192.168.1.20"),
        ("from 2001:db8::8a2e:370:7334 yesterday", "ip_address", "2001:db8::8a2e:370:7334"),
        ("My date of birth is 03/14/1985.", "date_of_birth", "03/14/1985"),
        ("I was born on March 3, 1979", "date_of_birth", "March 3, 1979"),
        ("Geburtsdatum: 1990-07-02", "date_of_birth", "1990-07-02"),
    ],
)
def test_each_kind_is_found_with_its_exact_span(text: str, kind: str, value: str) -> None:
    findings = detect_pii(text)
    assert [(f.kind, f.value(text)) for f in findings] == [(kind, value)]


@pytest.mark.parametrize(
    "text",
    [
        "Order #W2378156 has item 1656367028 (product 6086499569), tracking 357962501027.",
        "The price is $1,299.99, or 47.84 USD; zip 19122; delivered on 2024-05-01 at 10:30:00.",
        "Card 4111 1111 1111 1112 fails Luhn; 1234 5678 9012 3456 is not a card prefix.",
        "IBAN DE89 3704 0044 0532 0130 01 has a wrong check digit.",
        "Upgrade to version 1.2.3.4 of the app; call 10 times; it weighs 3.5.",
        "Remember the date 03/14/1985 and the meeting at 12:30.",
    ],
)
def test_commerce_look_alikes_are_not_pii(text: str) -> None:
    assert detect_pii(text) == ()


def test_ten_digit_product_ids_are_not_cards_even_when_luhn_passes() -> None:
    # 10 digits is below the 13-digit minimum of a card number, whatever the checksum says.
    assert luhn_valid("1656367028") is False
    assert luhn_valid("0000000018") is True
    assert detect_pii("item 0000000018 and 4000000018") == ()


def test_no_pii_in_the_real_retail_orders_and_task_instructions() -> None:
    if not RETAIL.exists():
        pytest.skip(f"the shared tau2 data is not at {RETAIL}")
    db = json.loads((RETAIL / "db.json").read_text())
    orders = [json.dumps(order) for order in list(db["orders"].values())[:300]]
    tasks = json.loads((RETAIL / "tasks.json").read_text())
    reasons = [t["user_scenario"]["instructions"]["reason_for_call"] for t in tasks]
    found = [(f.kind, f.value(t)) for t in orders + reasons for f in detect_pii(t)]
    assert found == []


def test_checksums() -> None:
    assert luhn_valid("4242424242424242")
    assert not luhn_valid("4242424242424241")
    assert iban_valid("FR14 2004 1010 0505 0001 3M02 606")
    assert not iban_valid("FR14 2004 1010 0505 0001 3M02 607")
    assert not iban_valid("XX")


def test_masking_uses_stable_placeholders_and_can_keep_the_card_tail() -> None:
    text = "Mail a@b.co, card 4111-1111-1111-1111, phone (977) 625-2661, ip 10.0.0.1."
    masked = mask_pii(text)
    assert masked.text == "Mail [EMAIL], card [CARD], phone [PHONE], ip [IP]."
    assert masked.counts() == {"email": 1, "card": 1, "phone": 1, "ip_address": 1}
    assert mask_pii(text, keep_card_last4=True).text.count("[CARD ending 1111]") == 1
    assert mask_pii("nothing here").masked is False


def test_masking_can_keep_chosen_findings_and_limit_kinds() -> None:
    text = "me: a@b.co, them: c@d.co, ip 10.0.0.1"
    kept = mask_pii(text, keep=lambda f: f.value(text) == "a@b.co")
    assert kept.text == "me: a@b.co, them: [EMAIL], ip [IP]"
    assert mask_pii(text, kinds={"ip_address"}).text == "me: a@b.co, them: c@d.co, ip [IP]"


def test_normalised_values_compare_across_formats() -> None:
    assert normalise("phone", "+1 (977) 625-2661") == normalise("phone", "977.625.2661")
    assert normalise("email", "A@B.co") == "a@b.co"
