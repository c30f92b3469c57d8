"""The email channel's protocol side: parsing mail (`parse`, with `quotes` and `html_text`),
sending replies (`send`), the built-in SMTP listener (`listener`) and reading an IMAP mailbox
(`imap`). None of it touches the database; `deputy.services.channel_email` connects it to the
platform."""
