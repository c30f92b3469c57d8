"""One uploaded material (bytes and the media type sniffed on upload) read into what the
builder works with: documents, outlines, transcripts or tool descriptions.

    result = read_material(MaterialRef("mat_1", "refunds.pdf", "application/pdf"), data)

- Markdown, HTML, PDF, DOCX and plain text are documents (`deputy.knowledge.parse`), except
  plain text that is a transcript ("Agent: ... / Customer: ..." lines).
- JSON and YAML are recognised by their shape (`deputy.builder.read_json`): guidelines, task
  flowcharts, transcripts, tool descriptions, OpenAPI.
- CSV, WebVTT and SRT are transcripts (`deputy.builder.read_transcripts_text`).
- WAV and MP3 recordings are transcribed by the `Transcriber` when there is one.

`read_material` never raises for a bad file: what cannot be used becomes a `MaterialProblem`
whose message says which file, what is wrong and what to do, and the build goes on with the
other files. A DOCX (a zip archive) whose members would expand to more than 100 times the
file's size, or to more than 200 MB, is refused before anything is decompressed.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import zipfile

from deputy.builder.read_common import Unreadable, quoted
from deputy.builder.read_json import YAML, read_structured
from deputy.builder.read_transcripts_text import (
    looks_like_transcript,
    read_csv_transcripts,
    read_subtitles,
    read_text_transcripts,
)
from deputy.builder.sources import (
    MaterialProblem,
    MaterialRef,
    ReadResult,
    SourceDocument,
    Transcriber,
    Transcript,
)
from deputy.domain.errors import UnsupportedMediaType, ValidationFailed
from deputy.knowledge.parse import decode_text, parse_document
from deputy.knowledge.parse_docx import DOCX
from deputy.knowledge.parse_pdf import PDF

log = logging.getLogger(__name__)

MAX_BYTES = 25_000_000
DOCX_MAX_EXPANSION = 100
DOCX_MAX_UNCOMPRESSED = 200_000_000
JSON = "application/json"
PLAIN_TEXT = "text/plain"
CSV = "text/csv"
SUBTITLES = frozenset({"text/vtt", "application/x-subrip"})
AUDIO = frozenset({"audio/wav", "audio/mpeg"})
DOCUMENTS = frozenset({"text/markdown", "text/html", PDF, DOCX, PLAIN_TEXT})


def read_material(
    ref: MaterialRef,
    data: bytes,
    *,
    transcriber: Transcriber | None = None,
    max_bytes: int = MAX_BYTES,
) -> ReadResult:
    """What `data` holds, with a problem for each part that could not be used."""
    try:
        return _read(ref, data, transcriber, max_bytes)
    except Unreadable as exc:
        return ReadResult(ref, None, problems=(exc.problem(ref),))
    except Exception as exc:  # one odd file must not stop a build of many
        log.exception("reading material %s (%s) failed", ref.id, ref.media_type)
        message = (
            f"Deputy could not read {quoted(ref.name)} ({type(exc).__name__}: {exc}). Check "
            "that the file opens, save it again, and upload the new copy."
        )
        return ReadResult(ref, None, problems=(MaterialProblem(ref, "invalid_content", message),))


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _read(
    ref: MaterialRef, data: bytes, transcriber: Transcriber | None, max_bytes: int
) -> ReadResult:
    media = ref.media_type.split(";", 1)[0].strip().lower()
    if not data:
        raise Unreadable("empty", f"{quoted(ref.name)} is empty (0 bytes). Upload it again.")
    if len(data) > max_bytes:
        raise Unreadable(
            "too_large",
            f"{quoted(ref.name)} is {_megabytes(len(data))}, more than the "
            f"{_megabytes(max_bytes)} a material may have. Split it into smaller files and "
            "upload those.",
        )
    if media in AUDIO:
        return _recording(ref, data, media, transcriber)
    if media in (JSON, YAML):
        return read_structured(ref, data, media)
    if media == CSV:
        return read_csv_transcripts(ref, decode_text(data))
    if media in SUBTITLES:
        return read_subtitles(ref, decode_text(data))
    if media == PLAIN_TEXT:
        text = decode_text(data)
        if looks_like_transcript(text):
            return read_text_transcripts(ref, text)
    if media == DOCX:
        _check_archive(ref, data)
    if media in DOCUMENTS:
        return _document(ref, data, media)
    raise Unreadable(
        "unsupported",
        f"{quoted(ref.name)} is {ref.media_type}, which Deputy cannot read. Upload documents "
        "(Markdown, text, HTML, PDF, DOCX), transcripts (JSON, CSV, text, WebVTT, SRT), tool "
        "descriptions (JSON, OpenAPI in JSON or YAML) or recordings (WAV, MP3).",
    )


def _check_archive(ref: MaterialRef, data: bytes) -> None:
    """Refuse a DOCX that would expand absurdly (a zip bomb), from the sizes its directory
    declares; nothing is decompressed (a member never yields more than its declared size)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise Unreadable(
            "damaged",
            f"{quoted(ref.name)} is a damaged Word document ({exc}). Open it in Word or "
            "LibreOffice, save it again, and upload the new copy.",
        ) from exc
    expanded = sum(member.file_size for member in members)
    if expanded > min(DOCX_MAX_UNCOMPRESSED, DOCX_MAX_EXPANSION * len(data)):
        raise Unreadable(
            "too_large",
            f"{quoted(ref.name)} would expand to {_megabytes(expanded)} when opened, "
            f"{expanded // len(data)} times its size; Deputy refuses files that expand this "
            "much. If it is a genuine document, save it again without embedded files and "
            "upload the new copy.",
        )


_ENCRYPTED = (
    "is password-protected, so Deputy cannot read it. Save a copy without the password and "
    "upload that."
)
_NO_TEXT = (
    "has no text Deputy can read. If it is a scan, upload a version with selectable text "
    "(Deputy does not run OCR)."
)


def _document(ref: MaterialRef, data: bytes, media: str) -> ReadResult:
    try:
        document = parse_document(data, media)
    except ValidationFailed as exc:
        reason = str(exc.details.get("reason", "damaged"))
        if reason == "encrypted":
            raise Unreadable("encrypted", f"{quoted(ref.name)} {_ENCRYPTED}") from exc
        if reason == "empty":
            raise Unreadable("empty", f"{quoted(ref.name)} {_NO_TEXT}") from exc
        if reason == "unsupported":
            raise Unreadable("unsupported", f"{quoted(ref.name)}: {exc.message}.") from exc
        raise Unreadable(
            "damaged",
            f"{quoted(ref.name)} is damaged and could not be read ({exc.message}). Open it, "
            "save or export it again, and upload the new copy.",
        ) from exc
    except UnsupportedMediaType as exc:
        raise Unreadable("unsupported", f"{quoted(ref.name)}: {exc.message}.") from exc
    return ReadResult(ref, "document", documents=(SourceDocument(ref, document),))


def _recording(
    ref: MaterialRef, data: bytes, media: str, transcriber: Transcriber | None
) -> ReadResult:
    if transcriber is None:
        raise Unreadable(
            "speech_to_text_unavailable",
            f"{quoted(ref.name)} is a recording. Recordings are transcribed once speech-to-text "
            "is configured (the voice channel provides it); until then, upload a transcript of "
            "the call instead.",
        )
    try:
        turns = transcriber.transcribe(data, media)
    except Exception as exc:  # any failure of the speech-to-text engine is this file's problem
        raise Unreadable(
            "damaged",
            f"{quoted(ref.name)} could not be transcribed ({type(exc).__name__}: {exc}). Check "
            "that the recording plays, or upload a transcript of it instead.",
        ) from exc
    spoken = [turn for turn in turns if turn.text.strip()]
    if not spoken:
        raise Unreadable("empty", f"No speech was found in {quoted(ref.name)}.")
    numbered = tuple(
        dataclasses.replace(turn, index=number) for number, turn in enumerate(spoken, start=1)
    )
    return ReadResult(ref, "recording", transcripts=(Transcript(ref, ref.name, numbered),))
