"""Quoted history and signatures are cut from what the agent reads; the customer's own words
(including prose that merely looks like a quote header) are kept."""

from __future__ import annotations

import pytest

from deputy.channels.email.html_text import html_to_text
from deputy.channels.email.quotes import strip_quotes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Cancel it please.\n\n-----Original Message-----\nFrom: Acme\nSent: today\n\nHi",
            "Cancel it please.",
        ),
        (
            "Cancel it.\n\n________________________________\nFrom: Acme <s@acme.test>\nOld",
            "Cancel it.",
        ),
        (
            "Merci !\n\nLe mar. 5 mars 2024 à 10:02, Acme <s@acme.test> a écrit :\n> Bonjour",
            "Merci !",
        ),
        (
            "Danke.\n\nAm 05.03.2024 um 10:02 schrieb Acme Support <s@acme.test>:\n> Hallo",
            "Danke.",
        ),
        (
            "Gracias.\n\nEl mar, 5 mar 2024 a las 10:02, Acme (<s@acme.test>) escribió:\n> Hola",
            "Gracias.",
        ),
        (
            "Thanks.\n\nOn 05/03/2024 10:02, Acme Support wrote:\n> Hello",
            "Thanks.",
        ),
        (
            "See you.\n\nDe : Acme Support <s@acme.test>\nEnvoyé : mardi 5 mars 2024\n"
            "À : Jean\nObjet : Commande\n\nBonjour",
            "See you.",
        ),
        ("Sure thing.\n\n-- \nJane Doe\nACME Corp\n+1 555 0100", "Sure thing."),
        ("OK!\n\nGet Outlook for Android", "OK!"),
        ("Fine.\nSent from my Galaxy\n", "Fine."),
    ],
)
def test_quotes_and_signatures_are_cut(text: str, expected: str) -> None:
    assert strip_quotes(text) == expected


def test_interleaved_replies_keep_the_customers_lines() -> None:
    text = "> Which size?\nLarge.\n> Which colour?\nBlue.\n"
    assert strip_quotes(text) == "Large.\nBlue."


def test_prose_that_looks_like_a_quote_header_is_kept() -> None:
    text = "On Monday the courier wrote: we missed you.\nCan you redeliver?"
    assert strip_quotes(text) == text


def test_a_long_text_after_a_double_dash_is_not_a_signature() -> None:
    steps = "\n".join(f"step {i}" for i in range(20))
    text = f"Here is what I did:\n--\n{steps}"
    assert strip_quotes(text) == text


def test_a_message_that_is_only_a_quote_is_kept_whole() -> None:
    text = "> the order number is 1234\n> thanks"
    assert strip_quotes(text) == text


def test_crlf_line_ends_are_handled() -> None:
    assert strip_quotes("Yes.\r\n\r\nOn Tue, 5 Mar 2024, A <a@b.test> wrote:\r\n> x\r\n") == "Yes."


def test_html_quote_containers_are_left_out() -> None:
    markup = (
        "<p>New text</p>"
        '<blockquote type="cite">old text</blockquote>'
        '<div id="divRplyFwdMsg">From: Acme</div>'
        '<div class="yahoo_quoted">yahoo old</div>'
    )
    assert html_to_text(markup) == "New text"
    assert "old text" in html_to_text(markup, drop_quotes=False)


def test_html_entities_are_decoded_once_and_pre_keeps_its_lines() -> None:
    markup = "<p>a &amp;lt; b &amp; c&nbsp;d</p><pre>line 1\n  line 2</pre><br/>end"
    assert html_to_text(markup) == "a &lt; b & c d\n\nline 1\nline 2\n\nend"
