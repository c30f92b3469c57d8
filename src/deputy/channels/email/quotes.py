"""What the customer actually wrote: the quoted history of a reply and the signature cut off.

Mail clients quote the whole thread below (or around) a reply. The agent must read only the
new text: the rest is either what it said itself (which would make it answer its own words) or
the customer's earlier messages (already in the conversation). Recognised:

- attribution lines: "On <date>, <name> wrote:" (Gmail, Apple Mail, Thunderbird; wrapped over
  up to three lines) and their French, German, Spanish, Dutch and Italian forms;
- Outlook's separators ("-----Original Message-----", an underscore rule) and its reply header
  block ("From: / Sent: / To: / Subject:" and translations);
- lines starting with `>` (anywhere, so interleaved replies keep the customer's own lines);
- signatures: the standard "-- " delimiter and the mobile ones ("Sent from my iPhone",
  "Get Outlook for Android", ...).

When cutting would leave nothing (a message that is only a quote), the text is kept whole:
showing the agent too much beats showing it an empty message."""

from __future__ import annotations

import re

ATTRIBUTIONS = (
    re.compile(r"^(on|le|el|il)\s.{4,400}?\b(wrote|a écrit|escribió|ha scritto)\s?:?$", re.I),
    re.compile(r"^(am|op)\s.{4,400}?\b(schrieb|schreef)\b.{0,300}:$", re.I),
)
SEPARATORS = re.compile(
    r"^(-{2,}\s*(original message|original-nachricht|message d'origine|mensaje original)\s*-{2,}"
    r"|_{20,})$",
    re.I,
)
HEADER_FROM = re.compile(r"^\*?(from|de|von|van|da)\s?:\*?\s", re.I)
HEADER_OTHER = re.compile(
    r"^\*?(sent|date|envoyé|gesendet|enviado|verzonden|inviato|to|à|an|para|aan|a|"
    r"subject|objet|betreff|asunto|onderwerp|oggetto|cc)\s?:\*?\s",
    re.I,
)
MOBILE_SIGNATURES = re.compile(
    r"^(sent from my \w.*|sent from (mail|outlook|yahoo mail) for \w.*|sent from yahoo mail.*"
    r"|get outlook for (ios|android).*|sent via .{1,40}|envoyé de mon \w.*|von meinem .* gesendet"
    r"|enviado desde mi \w.*|verzonden vanaf mijn \w.*|inviato da \w.*)$",
    re.I,
)
SIGNATURE_DELIMITERS = frozenset({"-- ", "--"})
MAX_SIGNATURE_LINES = 12


def _attribution_at(lines: list[str], index: int) -> bool:
    """Whether an attribution line ("On ... wrote:") starts at `index` (up to 3 lines)."""
    for width in (1, 2, 3):
        window = " ".join(line.strip() for line in lines[index : index + width]).strip()
        if not window or window.startswith(">"):
            return False
        if not re.search(r"\d", window):  # dates: "On Monday the shop wrote:" is prose
            continue
        if any(pattern.match(window) for pattern in ATTRIBUTIONS):
            return True
    return False


def _outlook_header_at(lines: list[str], index: int) -> bool:
    """A "From:" line followed by at least two of Sent/Date, To, Subject within 6 lines."""
    if not HEADER_FROM.match(lines[index].strip()):
        return False
    following = [line.strip() for line in lines[index + 1 : index + 7] if line.strip()]
    return sum(1 for line in following if HEADER_OTHER.match(line)) >= 2


def _signature_at(lines: list[str], index: int) -> bool:
    line = lines[index]
    if line.rstrip("\r") in SIGNATURE_DELIMITERS:
        return len(lines) - index - 1 <= MAX_SIGNATURE_LINES
    return bool(MOBILE_SIGNATURES.match(line.strip()))


def _cut(lines: list[str]) -> int:
    """The index of the first line of the quoted history or the signature."""
    for index, line in enumerate(lines):
        stripped = line.strip()
        if SEPARATORS.match(stripped):
            return index
        if _attribution_at(lines, index) or _outlook_header_at(lines, index):
            return index
        if _signature_at(lines, index):
            return index
    return len(lines)


def _tidy(lines: list[str]) -> str:
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def strip_quotes(text: str) -> str:
    """The new text of a message: quoted history, `>` lines and the signature removed."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept = [line for line in lines[: _cut(lines)] if not line.lstrip().startswith(">")]
    stripped = _tidy(kept)
    return stripped if stripped else _tidy(lines)
