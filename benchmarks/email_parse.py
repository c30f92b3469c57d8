"""How fast the email channel reads mail: `parse_email` (MIME parsing, HTML to text, quote and
signature stripping, bounce and auto-reply detection, attachment extraction) per message kind,
in messages per second on one core. The end-to-end email latency through a real server is in
benchmarks/channels.py.

    PYTHONPATH=src:. /tmp/venv/bin/python benchmarks/email_parse.py [--seconds 2]

Writes benchmarks/results/email_parse.json."""

from __future__ import annotations

import argparse
import json
import os
import time
from email.message import EmailMessage
from pathlib import Path

from deputy.channels.email.parse import parse_email

RESULTS = Path(__file__).resolve().parent / "results" / "email_parse.json"

QUOTED = "\n".join(f"> line {n} of the earlier message in this thread" for n in range(40))


def _message(subject: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Jane Doe <jane@example.com>"
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message["Message-ID"] = "<bench@example.com>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    return message


def corpus() -> dict[str, bytes]:
    plain = _message("Order 1234")
    plain.set_content(
        "My order has not arrived.\n\nOn Tue, 5 Mar 2024 at 10:02, Acme <s@acme.example> "
        f"wrote:\n{QUOTED}\n"
    )
    gmail = _message("Re: Order 1234", In_Reply_To="<a@acme.example>")
    gmail.set_content("Thanks, any news?\n\n-- \nJane\n")
    gmail.add_alternative(
        "<div dir='ltr'>Thanks, any news?</div><div class='gmail_quote'>"
        + "<p>old</p>" * 200
        + "</div>",
        subtype="html",
    )
    newsletter_like = _message("Question")
    newsletter_like.set_content(
        "<html><head><style>"
        + ".c{color:red}" * 500
        + "</style></head><body>"
        + "".join(
            f"<table><tr><td>cell {n}</td><td><a href='https://x.example/{n}'>link</a>"
            "</td></tr></table>"
            for n in range(800)
        )
        + "</body></html>",
        subtype="html",
    )
    attachment = _message("Invoice")
    attachment.set_content("See the attached invoice.")
    attachment.add_attachment(
        os.urandom(2 * 1024 * 1024), maintype="application", subtype="pdf", filename="i.pdf"
    )
    out_of_office = _message("Automatic reply", Auto_Submitted="auto-replied")
    out_of_office.set_content("I am away until Monday.")
    return {
        "plain_reply_with_quote": plain.as_bytes(),
        "gmail_multipart_reply": gmail.as_bytes(),
        "html_only_100kb": newsletter_like.as_bytes(),
        "attachment_2mb": attachment.as_bytes(),
        "out_of_office": out_of_office.as_bytes(),
    }


def measure(raw: bytes, seconds: float) -> dict[str, float]:
    parse_email(raw)  # warm-up
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        parse_email(raw)
        count += 1
    return {
        "bytes": len(raw),
        "messages_per_second": round(count / elapsed, 1),
        "ms_per_message": round(1000 * elapsed / count, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    results = {name: measure(raw, args.seconds) for name, raw in corpus().items()}
    report = {"seconds_per_kind": args.seconds, "cpu_count": os.cpu_count(), "results": results}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
