"""What the messaging adapters share: splitting long replies, URL variants Twilio may sign,
and transport failures that never leak a URL (a Telegram URL carries the bot token)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deputy.channels.base import DeliveryFailed
from deputy.channels.messaging import WEBHOOKS
from deputy.channels.messaging.telegram import TelegramSender
from deputy.channels.messaging.webhook import split_text
from deputy.channels.twilio import url_variants
from deputy.domain.channels import TelegramConfig
from tests.unit.messaging_fakes import outbound


def test_short_text_is_one_piece() -> None:
    assert split_text("  hello  ", 10) == ["hello"]


def test_text_is_cut_at_paragraphs_then_lines_then_words() -> None:
    assert split_text("aaaa bbbb\n\ncccc", 12) == ["aaaa bbbb", "cccc"]
    assert split_text("aaaaaaa\nbb cccc", 12) == ["aaaaaaa", "bb cccc"]
    assert split_text("aaaa bbbb cccc", 12) == ["aaaa bbbb", "cccc"]
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


@given(st.text(min_size=1, max_size=400), st.integers(min_value=4, max_value=50))
def test_pieces_fit_and_lose_only_whitespace(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert all(0 < len(p) <= limit for p in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())


def test_url_variants_cover_the_default_port_both_ways() -> None:
    assert url_variants("https://a.example/hook") == [
        "https://a.example/hook",
        "https://a.example:443/hook",
    ]
    assert "https://a.example/hook" in url_variants("https://a.example:443/hook")
    assert "https://a.example" in url_variants("https://a.example/")


def test_every_messaging_kind_has_a_webhook() -> None:
    assert set(WEBHOOKS) == {"slack", "telegram", "whatsapp", "sms"}


def test_a_transport_failure_is_transient_and_does_not_echo_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    sender = TelegramSender(httpx.MockTransport(refuse))
    config = TelegramConfig()
    with pytest.raises(DeliveryFailed) as failed:
        asyncio.run(sender.send(config, {"bot_token": "123:SECRET"}, outbound(chat_id=1)))
    assert failed.value.permanent is False
    assert "SECRET" not in str(failed.value)
