"""Transcripts in text formats: "Speaker: text" plain text, CSV tables, WebVTT and SRT.

- Plain text: a turn starts with a line `Agent: ...` / `Customer: ...` (any label that names a
  role, see `speaker_role`, optionally after a time stamp like `[10:02]`); other lines continue
  the turn before. A line of dashes, `===` or `***` separates conversations; without such lines
  blank lines separate them, unless they merely space out the turns (most blocks then hold a
  single turn, and the file is one conversation).
- CSV: the columns are found by name, case-insensitively: an optional conversation id
  (`conversation_id`, `conversation`, `dialogue_id`, `ticket`, `id`, ...), the speaker
  (`speaker`, `role`, ...) and the text (`text`, `message`, ...). Rows are grouped by
  conversation in the order they come.
- WebVTT and SRT: cues in time order; a cue's speaker is its voice tag (`<v Maria>`) or a
  `Speaker: ` prefix; a cue without one continues the previous speaker (`system` at the start).
  Consecutive cues of one speaker form one turn; time stamps only order the cues.

A file with one conversation names it after the file; several are numbered from 1.
"""

from __future__ import annotations

import csv
import html
import io
import re

from deputy.builder.read_common import Unreadable, quoted
from deputy.builder.read_transcripts import speaker_role, transcript_from_segments
from deputy.builder.sources import MaterialRef, ReadResult, Transcript

_STAMP = (
    r"(?:\[[^\]\n]{1,30}\]\s*|\(?\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp][Mm])?\)?\s*[-\u2013]?\s*)?"
)
_TURN_LINE = re.compile(
    rf"^\s*{_STAMP}(?P<label>[^\W\d][\w .'()&/-]{{0,39}}?)\s*:(?:\s+(?P<text>.*))?$"
)
_SEPARATOR = re.compile(r"^\s*(?:-{3,}|={3,}|\*{3,}|_{3,})\s*$")
_ID_COLUMNS = (
    "conversation_id",
    "conversation",
    "dialogue_id",
    "dialog_id",
    "ticket",
    "ticket_id",
    "chat_id",
    "session_id",
    "thread_id",
    "id",
)
_SPEAKER_COLUMNS = ("speaker", "role", "author", "sender", "from", "participant")
_TEXT_COLUMNS = ("text", "message", "utterance", "content", "body", "transcript")
_TIMING = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})(?:[.,](\d{1,3}))?\s*-->")
_VOICE = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]+)>")
_TAG = re.compile(r"</?[^>]*>")
_NAME_LABEL = re.compile(
    r"^(?:-\s*)?(?P<label>[^\W\d][\w.'-]*(?: [^\W\d][\w.'-]*){0,3})\s*:\s+(?P<text>.+)$"
)


def _role_line(line: str) -> tuple[str, str] | None:
    match = _TURN_LINE.match(line)
    if match is None or speaker_role(match.group("label")) is None:
        return None
    return match.group("label").strip(), (match.group("text") or "").strip()


def looks_like_transcript(text: str) -> bool:
    """Plain text is a transcript when one of its first three lines of content starts a turn
    ("Agent: ..."; a title line may come first), turns of both the agent and the customer side
    appear, and turn lines are at least a third of the lines."""
    lines = [line for line in text.split("\n") if line.strip() and not _SEPARATOR.match(line)]
    if not any(_role_line(line) is not None for line in lines[:3]):
        return False
    turns = [turn for turn in map(_role_line, lines) if turn is not None]
    roles = {speaker_role(label) for label, _ in turns}
    return {"agent", "customer"} <= roles and 3 * len(turns) >= len(lines)


def _text_blocks(text: str) -> list[list[str]]:
    lines = text.split("\n")
    if any(_SEPARATOR.match(line) for line in lines):
        blocks: list[list[str]] = [[]]
        for line in lines:
            if _SEPARATOR.match(line):
                blocks.append([])
            else:
                blocks[-1].append(line)
        return [block for block in blocks if any(line.strip() for line in block)]
    by_blank: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            by_blank[-1].append(line)
        elif by_blank[-1]:
            by_blank.append([])
    by_blank = [block for block in by_blank if block]
    single = sum(
        1 for block in by_blank if sum(_role_line(line) is not None for line in block) <= 1
    )
    return [lines] if 2 * single > len(by_blank) else by_blank


def _segments(lines: list[str]) -> list[tuple[str, str]]:
    segments: list[tuple[str, str]] = []
    for line in lines:
        turn = _role_line(line)
        if turn is not None:
            segments.append(turn)
        elif segments and line.strip():
            label, text = segments[-1]
            segments[-1] = (label, f"{text}\n{line.strip()}".strip())
    return segments


def _finish(ref: MaterialRef, transcripts: list[Transcript], what: str) -> ReadResult:
    transcripts = [t for t in transcripts if t.turns]
    if not transcripts:
        raise Unreadable("empty", f"{quoted(ref.name)} holds no {what} with text.")
    return ReadResult(ref, "transcripts", transcripts=tuple(transcripts))


def _named(ref: MaterialRef, conversations: list[list[tuple[str, str]]]) -> list[Transcript]:
    conversations = [segments for segments in conversations if segments]
    if len(conversations) == 1:
        return [transcript_from_segments(ref, ref.name, conversations[0])]
    return [
        transcript_from_segments(ref, str(number), segments)
        for number, segments in enumerate(conversations, start=1)
    ]


def read_text_transcripts(ref: MaterialRef, text: str) -> ReadResult:
    """Plain text that `looks_like_transcript`."""
    return _finish(ref, _named(ref, [_segments(block) for block in _text_blocks(text)]), "turns")


# ---- CSV -----------------------------------------------------------------------------------


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    normalised = [re.sub(r"[\s-]+", "_", cell.strip().lower()) for cell in header]
    for name in names:
        if name in normalised:
            return normalised.index(name)
    return None


def read_csv_transcripts(ref: MaterialRef, text: str) -> ReadResult:
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:4096], delimiters=",;\t|"
        )
    except csv.Error:
        dialect = csv.excel
    try:
        rows = list(csv.reader(io.StringIO(text), dialect))
    except csv.Error as exc:
        raise Unreadable(
            "damaged",
            f"{quoted(ref.name)} is not a readable CSV table ({exc}). Export it again and "
            "upload the new copy.",
        ) from exc
    if not rows:
        raise Unreadable("empty", f"{quoted(ref.name)} is an empty table.")
    header = rows[0]
    id_column = _column(header, _ID_COLUMNS)
    speaker_column = _column(header, _SPEAKER_COLUMNS)
    text_column = _column(header, _TEXT_COLUMNS)
    if speaker_column is None or text_column is None:
        raise Unreadable(
            "invalid_content",
            f"{quoted(ref.name)} is a table Deputy does not recognise as transcripts: its header "
            f"is {', '.join(header) or '(empty)'}. Expected a speaker column (speaker or role), "
            "a text column (text or message) and, when the file holds several conversations, a "
            "conversation column (conversation_id, conversation, dialogue_id, ticket or id).",
        )
    grouped: dict[str, list[tuple[str, str]]] = {}
    current = ref.name
    for row in rows[1:]:
        if id_column is not None and id_column < len(row) and row[id_column].strip():
            current = row[id_column].strip()
        if max(speaker_column, text_column) >= len(row):
            continue
        grouped.setdefault(current, []).append((row[speaker_column], row[text_column]))
    transcripts = [
        transcript_from_segments(ref, conversation, segments)
        for conversation, segments in grouped.items()
    ]
    return _finish(ref, transcripts, "rows")


# ---- WebVTT and SRT ------------------------------------------------------------------------


def _seconds(match: re.Match[str]) -> float:
    hours, minutes, seconds, fraction = match.groups()
    return (
        int(hours or 0) * 3600
        + int(minutes) * 60
        + int(seconds)
        + int((fraction or "0").ljust(3, "0")) / 1000
    )


def _speaker_like(label: str) -> bool:
    """A caption prefix that names a speaker: a role, or a capitalised name ("Maria Lopez")."""
    return speaker_role(label) is not None or all(word[0].isupper() for word in label.split())


def _cue_segments(lines: list[str]) -> list[tuple[str | None, str]]:
    """(speaker label or None, text) for each voice of a cue."""
    segments: list[tuple[str | None, str]] = []
    for raw in lines:
        voice = _VOICE.search(raw)
        line = html.unescape(_TAG.sub("", raw)).strip()
        if not line:
            continue
        label: str | None = voice.group(1).strip() if voice else None
        named = _NAME_LABEL.match(line) if label is None else None
        if named and _speaker_like(named.group("label")):
            label, line = named.group("label"), named.group("text").strip()
        if label is None and segments:
            previous, text = segments[-1]
            segments[-1] = (previous, f"{text} {line}")
        else:
            segments.append((label, line.removeprefix("- ")))
    return segments


def read_subtitles(ref: MaterialRef, text: str) -> ReadResult:
    """WebVTT or SRT captions as one conversation."""
    cues: list[tuple[float, int, list[str]]] = []
    for position, block in enumerate(re.split(r"\n[ \t]*\n", text)):
        lines = block.strip("\n").split("\n")
        timing = next((n for n, line in enumerate(lines) if "-->" in line), None)
        if timing is None or lines[0].startswith(("NOTE", "STYLE", "REGION")):
            continue
        match = _TIMING.search(lines[timing])
        cues.append((_seconds(match) if match else float(position), position, lines[timing + 1 :]))
    cues.sort(key=lambda cue: (cue[0], cue[1]))
    segments: list[tuple[str, str]] = []
    for _, _, lines in cues:
        for label, line in _cue_segments(lines):
            speaker = label if label is not None else (segments[-1][0] if segments else "System")
            if segments and segments[-1][0] == speaker:
                segments[-1] = (speaker, f"{segments[-1][1]} {line}")
            else:
                segments.append((speaker, line))
    return _finish(ref, _named(ref, [segments]), "captions")
