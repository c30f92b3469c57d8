"""The web chat channel: the embeddable widget (`widget.js`, plain JavaScript, no build step)
and the demo page that embeds it, as static assets shipped in the package."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib.resources import files
from string import Template

PACKAGE = "deputy.channels.web"


@dataclass(frozen=True)
class Asset:
    """A static file and its validator."""

    body: bytes
    etag: str


@cache
def widget_script() -> Asset:
    """`widget.js`, read once per process."""
    body = files(PACKAGE).joinpath("widget.js").read_bytes()
    return Asset(body=body, etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"')


@cache
def _demo_template() -> Template:
    return Template(files(PACKAGE).joinpath("chat.html").read_text(encoding="utf-8"))


def demo_page(agent_id: str) -> str:
    """The page at `/chat/{agent_id}`: the widget, open, with the key taken from the URL's
    fragment (`#key=...`, which browsers never send to a server)."""
    return _demo_template().substitute(agent_id=escape(agent_id, quote=True))
