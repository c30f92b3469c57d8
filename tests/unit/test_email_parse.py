"""Parsing real-world mail: what the customer wrote (quotes and signatures stripped, HTML made
readable), who they are, how the message threads, what is attached, and which messages must
never be answered (bounces, automatic replies, list mail)."""

from __future__ import annotations

import base64
from email.message import EmailMessage

import pytest

from deputy.channels.email.parse import ignore_reason, message_ids, parse_email, reply_to


def crlf(text: str) -> bytes:
    return text.strip("\n").replace("\n", "\r\n").encode() + b"\r\n"


GMAIL_HTML = """\
<div dir="ltr">It still hasn&#39;t arrived, can you check again?<div><br></div>
<div>Thanks,</div><div>Jane</div></div><br><div class="gmail_quote">
<div dir="ltr" class="gmail_attr">On Tue, Mar 5, 2024 at 10:02 AM Acme Support
&lt;support@acme.test&gt; wrote:<br></div><blockquote class="gmail_quote">
Hello Jane, your order ships today.</blockquote></div>
"""

GMAIL_REPLY = crlf(
    f"""
Return-Path: <jane.doe@gmail.test>
From: Jane Doe <jane.doe@gmail.test>
To: Acme Support <support@acme.test>
Subject: Re: Order 1234
Date: Tue, 5 Mar 2024 10:15:00 +0000
Message-ID: <CAJ+3xq=reply@mail.gmail.test>
In-Reply-To: <agent-1@acme.test>
References: <CAJ+first@mail.gmail.test> <agent-1@acme.test>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="000000000000abcdef"

--000000000000abcdef
Content-Type: text/plain; charset="UTF-8"

It still hasn't arrived, can you check again?

Thanks,
Jane

On Tue, Mar 5, 2024 at 10:02 AM Acme Support <
support@acme.test> wrote:

> Hello Jane, your order ships today.
>
> Acme

--000000000000abcdef
Content-Type: text/html; charset="UTF-8"

{GMAIL_HTML}

--000000000000abcdef--
"""
)

OUTLOOK_REPLY = crlf(
    """
From: "Smith, John" <john.smith@contoso.test>
To: "support@acme.test" <support@acme.test>
Subject: RE: Order 1234
Date: Tue, 5 Mar 2024 11:00:00 +0000
Message-ID: <DM6PR01MB1234@namprd01.prod.outlook.test>
In-Reply-To: <agent-2@acme.test>
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Please cancel it and refund me.

Regards,
John

From: Acme Support <support@acme.test>
Sent: Tuesday, March 5, 2024 10:02 AM
To: Smith, John <john.smith@contoso.test>
Subject: Re: Order 1234

Hello John, shall I cancel the order?
"""
)

OUTLOOK_HTML_ONLY = crlf(
    """
From: John Smith <john.smith@contoso.test>
To: support@acme.test
Subject: RE: Order 1234
Message-ID: <outlook-html@contoso.test>
Content-Type: text/html; charset="utf-8"

<html><head><style>p.MsoNormal {margin:0}</style></head><body>
<div class="WordSection1"><p class="MsoNormal">Yes, go ahead with the exchange.</p>
<p class="MsoNormal">&nbsp;</p>
<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in">
<p class="MsoNormal"><b>From:</b> Acme Support &lt;support@acme.test&gt;<br>
<b>Sent:</b> Tuesday, March 5, 2024 10:02 AM<br>
<b>To:</b> John Smith &lt;john.smith@contoso.test&gt;<br>
<b>Subject:</b> Re: Order 1234</p></div>
<p class="MsoNormal">Would you like an exchange?</p></div></body></html>
"""
)

APPLE_MAIL_REPLY = crlf(
    """
From: Ana Lima <ana@icloud.test>
To: support@acme.test
Subject: Re: Refund
Message-Id: <8C1D-APPLE@icloud.test>
In-Reply-To: <agent-3@acme.test>
References: <agent-3@acme.test>
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Yes please, go ahead — merci!

Sent from my iPhone

> On 5 Mar 2024, at 10:02, Acme Support <support@acme.test> wrote:
>
> Shall I refund it?
"""
)

HTML_ONLY = crlf(
    """
From: shop@widgets.test
To: support@acme.test
Subject: Question
Message-ID: <html-only@widgets.test>
Content-Type: text/html; charset=utf-8

<html><head><title>ignored title</title><style>.x{color:red}</style>
<script>alert("x")</script></head><body>
<h1>Order question</h1><p>Hello,<br>where is order <b>#88</b>?</p>
<ul><li>blue mug</li><li>red mug</li></ul>
<p>See <a href="https://widgets.test/orders/88">my order</a>.</p>
<div style="display:none">tracking pixel text</div>
</body></html>
"""
)

DSN_BOUNCE = crlf(
    """
Return-Path: <>
From: MAILER-DAEMON@mail.acme.test (Mail Delivery System)
To: support@acme.test
Subject: Undelivered Mail Returned to Sender
Message-Id: <20240305100300.ABC@mail.acme.test>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.acme.test

Final-Recipient: rfc822; nobody@nowhere.test
Action: failed
Status: 5.1.1

--B1--
"""
)

OUT_OF_OFFICE = crlf(
    """
From: John Smith <john.smith@contoso.test>
To: support@acme.test
Subject: Automatic reply: Order 1234
Message-ID: <ooo-1@contoso.test>
In-Reply-To: <agent-2@acme.test>
Auto-Submitted: auto-generated
X-Auto-Response-Suppress: All
Content-Type: text/plain

I am out of the office until Monday.
"""
)


def test_gmail_reply_is_the_new_text_only_and_threads_to_our_message() -> None:
    parsed = parse_email(GMAIL_REPLY)
    assert parsed.text == "It still hasn't arrived, can you check again?\n\nThanks,\nJane"
    assert parsed.from_address == "jane.doe@gmail.test"
    assert parsed.from_name == "Jane Doe"
    assert parsed.subject == "Re: Order 1234"
    assert parsed.message_id == "<CAJ+3xq=reply@mail.gmail.test>"
    assert parsed.thread_keys == (
        "<agent-1@acme.test>",
        "<CAJ+first@mail.gmail.test>",
        "<CAJ+3xq=reply@mail.gmail.test>",
    )
    assert parsed.ignored is None
    assert "support@acme.test" in parsed.recipients


def test_gmail_html_only_reply_reads_the_same() -> None:
    raw = crlf(
        "From: jane.doe@gmail.test\nTo: support@acme.test\nSubject: Re: Order 1234\n"
        "Message-ID: <html@gmail.test>\nContent-Type: text/html; charset=UTF-8\n\n" + GMAIL_HTML
    )
    assert parse_email(raw).text == "It still hasn't arrived, can you check again?\n\nThanks,\nJane"


def test_outlook_reply_header_block_is_cut() -> None:
    parsed = parse_email(OUTLOOK_REPLY)
    assert parsed.text == "Please cancel it and refund me.\n\nRegards,\nJohn"
    assert parsed.from_name == "Smith, John"


def test_outlook_html_only_reply_is_readable_and_cut() -> None:
    parsed = parse_email(OUTLOOK_HTML_ONLY)
    assert parsed.text == "Yes, go ahead with the exchange."


def test_apple_mail_reply_drops_the_mobile_signature_and_the_quote() -> None:
    parsed = parse_email(APPLE_MAIL_REPLY)
    assert parsed.text == "Yes please, go ahead — merci!"
    assert parsed.message_id == "<8C1D-APPLE@icloud.test>"
    assert parsed.thread_keys[0] == "<agent-3@acme.test>"


def test_html_only_message_becomes_readable_text_without_scripts_or_styles() -> None:
    text = parse_email(HTML_ONLY).text
    assert "alert" not in text and "color:red" not in text and "ignored title" not in text
    assert "tracking pixel" not in text
    assert "Order question" in text
    assert "Hello,\nwhere is order #88?" in text
    assert "- blue mug\n- red mug" in text
    assert "my order (https://widgets.test/orders/88)" in text


def test_a_dsn_bounce_is_ignored() -> None:
    parsed = parse_email(DSN_BOUNCE)
    assert parsed.ignored is not None and parsed.ignored.startswith("bounce")
    assert parsed.text == ""


def test_an_out_of_office_is_ignored() -> None:
    parsed = parse_email(OUT_OF_OFFICE)
    assert parsed.ignored == "automatic: Auto-Submitted auto-generated"


def _message(**headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Jane <jane@example.test>"
    message["To"] = "support@acme.test"
    message["Subject"] = "Hello"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Hi there")
    return message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X_Autoreply": "yes"}, "automatic: X-Autoreply"),
        ({"X_Auto_Response_Suppress": "All"}, "automatic: X-Auto-Response-Suppress"),
        ({"Precedence": "bulk"}, "automatic: Precedence bulk"),
        ({"Precedence": "junk"}, "automatic: Precedence junk"),
        ({"List_Id": "<news.example.test>"}, "list mail: List-Id"),
        ({"Auto_Submitted": "auto-replied"}, "automatic: Auto-Submitted auto-replied"),
        ({"Auto_Submitted": "no"}, None),
        ({"Return_Path": "<>"}, "bounce: an empty return path"),
        ({"Return_Path": "<jane@example.test>"}, None),
        ({}, None),
    ],
)
def test_automatic_mail_is_recognised_by_its_headers(
    headers: dict[str, str], expected: str | None
) -> None:
    assert ignore_reason(_message(**headers)) == expected


def test_the_envelope_sender_decides_when_known() -> None:
    assert ignore_reason(_message(), "<>") == "bounce: an empty return path"
    assert ignore_reason(_message(), "jane@example.test") is None
    postmaster = _message()
    postmaster.replace_header("From", "postmaster@example.test")
    assert ignore_reason(postmaster) == "bounce: sent by postmaster"


def test_attachments_are_kept_with_their_bytes_but_embedded_images_are_not() -> None:
    message = _message(Message_ID="<with-files@example.test>")
    message.add_attachment(
        b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf"
    )
    message.add_attachment(
        b"\x89PNG logo",
        maintype="image",
        subtype="png",
        filename="logo.png",
        disposition="inline",
        cid="<logo@x>",
    )
    message.add_attachment(
        b"\xff\xd8\xff photo", maintype="image", subtype="jpeg", filename="../../etc/photo.jpg"
    )
    parsed = parse_email(message.as_bytes())
    assert parsed.text == "Hi there"
    assert [(a.filename, a.content_type, a.content) for a in parsed.attachments] == [
        ("invoice.pdf", "application/pdf", b"%PDF-1.4 invoice"),
        ("photo.jpg", "image/jpeg", b"\xff\xd8\xff photo"),
    ]


def test_a_message_without_message_id_gets_a_stable_stand_in() -> None:
    raw = _message().as_bytes()
    first, again = parse_email(raw), parse_email(raw)
    assert first.message_id == again.message_id
    assert first.message_id.startswith("<sha256.") and first.message_id.endswith("@deputy.invalid>")
    assert first.thread_keys == (first.message_id,)


def test_a_reply_to_at_another_domain_is_not_followed() -> None:
    parsed = parse_email(_message(Reply_To="collector@elsewhere.test").as_bytes())
    assert parsed.reply_address == "jane@example.test"


def test_reply_to_header_and_reply_data() -> None:
    parsed = parse_email(
        _message(
            Reply_To="Jane Team <TEAM@example.test>",
            Message_ID="<m2@example.test>",
            References="<m0@example.test> <m1@example.test>",
        ).as_bytes()
    )
    assert parsed.reply_address == "team@example.test"
    assert parsed.from_address == "jane@example.test"
    data = reply_to(parsed, "Acme Support\nacme.test")
    assert data == {
        "address": "team@example.test",
        "name": "Jane",
        "subject": "Hello",
        "message_id": "<m2@example.test>",
        "references": ["<m0@example.test>", "<m1@example.test>", "<m2@example.test>"],
        "signature": "Acme Support\nacme.test",
    }


def test_encoded_words_and_base64_bodies_are_decoded() -> None:
    body = base64.b64encode("Où est ma commande ?\n\n-- \nÉlodie\n".encode()).decode()
    raw = crlf(
        f"""
From: =?utf-8?q?=C3=89lodie_Martin?= <elodie@example.test>
To: support@acme.test
Subject: =?utf-8?b?Q29tbWFuZGUgbsKwNDI=?=
Message-ID: <fr-1@example.test>
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

{body}
"""
    )
    parsed = parse_email(raw)
    assert parsed.from_name == "Élodie Martin"
    assert parsed.subject == "Commande n°42"
    assert parsed.text == "Où est ma commande ?"


def test_message_ids_finds_every_id_token() -> None:
    assert message_ids(" <a@x>\r\n\t<b@y> junk <c@z>") == ["<a@x>", "<b@y>", "<c@z>"]
    assert message_ids(None) == []
