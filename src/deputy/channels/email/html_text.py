"""HTML mail to readable plain text, with the standard library's tolerant parser.

Many customers' clients send HTML only. The agent needs what a person would read: paragraphs
and line breaks kept, list items marked, link targets shown when they differ from the link's
text, and nothing of `<script>`, `<style>`, `<head>` or hidden elements. The quoted history
that clients wrap in recognisable containers (Gmail's `gmail_quote`, Apple Mail's and
Thunderbird's `<blockquote type="cite">`, Outlook's reply header `divRplyFwdMsg`, Yahoo's
`yahoo_quoted`) is left out here, because after conversion nothing marks it as a quote."""

from __future__ import annotations

import re
from html.parser import HTMLParser

SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript", "svg"})
BLOCKS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "table",
        "tr",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "hr",
        "address",
        "center",
        "dl",
        "dt",
        "dd",
    }
)
PARAGRAPHS = frozenset({"p", "table", "ul", "ol", "pre", "h1", "h2", "h3", "h4", "h5", "h6"})
VOID = frozenset(
    {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"}
)
QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix")
QUOTE_IDS = ("divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container")


def _is_quote(tag: str, attrs: dict[str, str]) -> bool:
    """A container clients use for the quoted history of a reply."""
    classes = attrs.get("class", "").lower().split()
    if any(name in classes for name in QUOTE_CLASSES):
        return True
    if attrs.get("id", "").lower() in QUOTE_IDS:
        return True
    return tag == "blockquote" and (
        attrs.get("type", "").lower() == "cite" or "gmail_quote" in classes
    )


def _is_hidden(attrs: dict[str, str]) -> bool:
    style = attrs.get("style", "").replace(" ", "").lower()
    return "display:none" in style or "hidden" in attrs


class _TextCollector(HTMLParser):
    def __init__(self, *, drop_quotes: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.drop_quotes = drop_quotes
        self.parts: list[str] = []
        self.stack: list[str] = []  # open elements inside a skipped subtree (any depth)
        self.skip_depth = 0
        self.pre_depth = 0
        self.links: list[str | None] = []
        self.link_text: list[str] = []

    # ---- structure ----

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key.lower(): value or "" for key, value in attrs}
        if self.skip_depth:
            if tag not in VOID:
                self.skip_depth += 1
            return
        if tag in SKIPPED or _is_hidden(found) or (self.drop_quotes and _is_quote(tag, found)):
            if tag not in VOID:
                self.skip_depth = 1
            return
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag == "img":
            alt = found.get("alt", "").strip()
            if alt:
                self.parts.append(alt)
        elif tag in BLOCKS:
            self._break(2 if tag in PARAGRAPHS else 1)
            if tag == "hr":
                self.parts.append("---\n")
        if tag == "pre":
            self.pre_depth += 1
        if tag == "a":
            self.links.append(found.get("href"))
            self.link_text = []

    def handle_endtag(self, tag: str) -> None:
        if self.skip_depth:
            self.skip_depth -= 1
            return
        if tag == "pre" and self.pre_depth:
            self.pre_depth -= 1
        if tag == "a" and self.links:
            href = self.links.pop()
            text = "".join(self.link_text).strip()
            if href and href.startswith(("http://", "https://")) and href not in text:
                self.parts.append(f" ({href})")
        elif tag in BLOCKS:
            self._break(2 if tag in PARAGRAPHS else 1)

    def _break(self, lines: int) -> None:
        """End the current line (`lines` 2: and leave a blank one) unless already done, so
        nested blocks do not pile up empty lines."""
        have = 0
        for part in reversed(self.parts):
            text = part.rstrip(" \t\n\xa0")
            have += part[len(text) :].count("\n")
            if text:
                break
        else:  # nothing written yet: no line to end
            return
        if have < lines:
            self.parts.append("\n" * (lines - have))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        text = data if self.pre_depth else re.sub(r"\s+", " ", data)
        self.parts.append(text)
        if self.links:
            self.link_text.append(text)

    def text(self) -> str:
        raw = "".join(self.parts).replace("\xa0", " ")
        lines = [line.strip() for line in raw.split("\n")]
        joined = "\n".join(lines)
        return re.sub(r"\n{3,}", "\n\n", joined).strip()


def html_to_text(markup: str, *, drop_quotes: bool = True) -> str:
    """The readable text of an HTML body; `drop_quotes` leaves out the quoted history."""
    collector = _TextCollector(drop_quotes=drop_quotes)
    collector.feed(markup)
    collector.close()
    return collector.text()
