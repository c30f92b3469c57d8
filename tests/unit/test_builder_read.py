"""`read_material` on documents, recordings and files that cannot be used: every failure is a
problem with a message for the person who uploaded the file, never an exception."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deputy.builder import read as read_module
from deputy.builder.read import read_material
from deputy.builder.sources import MaterialRef, Turn
from tests.knowledge_files import encrypt_pdf, make_docx, make_pdf
from tests.processes import SHARED_DATA

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
POLICY = SHARED_DATA / "tau2-bench" / "data" / "tau2" / "domains" / "retail" / "policy.md"


def ref(name: str, media_type: str) -> MaterialRef:
    return MaterialRef(f"mat_{name.replace('.', '_')}", name, media_type)


def only_problem(result_code: str, name: str, media_type: str, data: bytes) -> str:
    """Read a file that must fail with `result_code`; return the problem's message."""
    result = read_material(ref(name, media_type), data)
    assert result.kind is None
    assert not (result.documents or result.outlines or result.transcripts or result.tools)
    assert [p.code for p in result.problems] == [result_code]
    message = result.problems[0].message
    assert f'"{name}"' in message  # says which file
    return message


# ---- documents -----------------------------------------------------------------------------


def test_the_retail_policy_is_a_document_with_its_parsed_text() -> None:
    data = POLICY.read_bytes()
    result = read_material(ref("policy.md", "text/markdown"), data)
    assert result.kind == "document" and not result.problems
    (source,) = result.documents
    assert source.material.name == "policy.md"
    assert source.document.text == data.decode("utf-8")
    assert "cancel" in source.document.text.lower()


def test_pdf_docx_and_html_are_documents() -> None:
    pdf = make_pdf([[(20, "Refunds"), (11, "Refunds take five days.")]])
    docx_result = read_material(ref("handbook.docx", DOCX), make_docx())
    pdf_result = read_material(ref("refunds.pdf", "application/pdf"), pdf)
    html = b"<html><body><h1>Returns</h1><p>Returns are free within 30 days.</p></body></html>"
    html_result = read_material(ref("returns.html", "text/html"), html)
    assert "Gift cards" in docx_result.documents[0].document.text
    assert "Refunds take five days." in pdf_result.documents[0].document.text
    assert "Returns are free within 30 days." in html_result.documents[0].document.text
    assert {docx_result.kind, pdf_result.kind, html_result.kind} == {"document"}


def test_plain_text_prose_is_a_document_and_a_dialogue_is_a_transcript() -> None:
    prose = b"Refund policy\n\nA customer may ask for a refund within 30 days.\nAgents check it."
    dialogue = b"Agent: Hello, how can I help?\nCustomer: I want a refund.\nAgent: Sure."
    assert read_material(ref("policy.txt", "text/plain"), prose).kind == "document"
    result = read_material(ref("chat.txt", "text/plain"), dialogue)
    assert result.kind == "transcripts"
    assert [t.speaker for t in result.transcripts[0].turns] == ["agent", "customer", "agent"]


# ---- problems ------------------------------------------------------------------------------


def test_an_empty_file_is_reported_as_empty() -> None:
    message = only_problem("empty", "notes.md", "text/markdown", b"")
    assert "empty" in message
    only_problem("empty", "blank.md", "text/markdown", b"  \n\n ")
    only_problem("empty", "blank.json", "application/json", b"\n")


def test_an_oversized_file_is_refused_before_it_is_parsed() -> None:
    result = read_material(ref("big.md", "text/markdown"), b"# Title\n" + b"x" * 200, max_bytes=100)
    assert [p.code for p in result.problems] == ["too_large"]
    assert "Split it" in result.problems[0].message


def test_an_encrypted_pdf_asks_for_an_unprotected_copy() -> None:
    data = encrypt_pdf(make_pdf([[(11, "Secret policy")]]), user_password="pw")
    message = only_problem("encrypted", "secret.pdf", "application/pdf", data)
    assert "password" in message


def test_a_damaged_pdf_asks_to_export_it_again() -> None:
    data = make_pdf([[(11, "Refunds take five days.")]])
    message = only_problem("damaged", "cut.pdf", "application/pdf", data[: len(data) // 3])
    assert "upload the new copy" in message


def test_a_scanned_pdf_without_text_says_there_is_no_ocr() -> None:
    message = only_problem("empty", "scan.pdf", "application/pdf", make_pdf([[(11, "")]]))
    assert "OCR" in message


def test_a_damaged_docx_is_reported() -> None:
    only_problem("damaged", "broken.docx", DOCX, b"PK\x03\x04 this is not a zip archive")


def _bomb(member_size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w") as member:
            chunk = b"\0" * 1_000_000
            for _ in range(member_size // len(chunk)):
                member.write(chunk)
    return buffer.getvalue()


def test_a_zip_bomb_docx_is_refused_without_being_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _bomb(30_000_000)  # 30 MB of zeros compress to ~30 KB: ~1000 times
    assert len(data) < 100_000

    def must_not_parse(data: bytes, media_type: str) -> None:
        raise AssertionError("the archive was parsed")

    monkeypatch.setattr(read_module, "parse_document", must_not_parse)
    message = only_problem("too_large", "bomb.docx", DOCX, data)
    assert "expand" in message


def test_a_docx_over_the_absolute_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(read_module, "DOCX_MAX_UNCOMPRESSED", 50_000)
    only_problem("too_large", "handbook.docx", DOCX, make_docx())
    monkeypatch.undo()
    assert read_material(ref("handbook.docx", DOCX), make_docx()).kind == "document"


def test_an_unsupported_media_type_is_reported() -> None:
    message = only_problem("unsupported", "logo.png", "image/png", b"\x89PNG....")
    assert "Markdown" in message


# ---- recordings ----------------------------------------------------------------------------

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt "


class FakeTranscriber:
    def __init__(self, turns: tuple[Turn, ...]) -> None:
        self.turns = turns
        self.calls: list[str] = []

    def transcribe(self, data: bytes, media_type: str) -> tuple[Turn, ...]:
        self.calls.append(media_type)
        return self.turns


class BrokenTranscriber:
    def transcribe(self, data: bytes, media_type: str) -> tuple[Turn, ...]:
        raise RuntimeError("decoder error: not a RIFF file")


def test_a_recording_without_speech_to_text_asks_for_a_transcript() -> None:
    message = only_problem("speech_to_text_unavailable", "call.wav", "audio/wav", WAV)
    assert "speech-to-text" in message and "transcript" in message


def test_a_recording_is_transcribed_into_one_transcript() -> None:
    transcriber = FakeTranscriber(
        (
            Turn(7, "agent", "Thanks for calling, how can I help?"),
            Turn(8, "system", "  "),
            Turn(9, "customer", "My parcel never arrived."),
        )
    )
    result = read_material(ref("call.mp3", "audio/mpeg"), b"ID3....", transcriber=transcriber)
    assert result.kind == "recording" and transcriber.calls == ["audio/mpeg"]
    (transcript,) = result.transcripts
    assert transcript.id == "call.mp3"
    assert [(t.index, t.speaker) for t in transcript.turns] == [(1, "agent"), (2, "customer")]


def test_a_transcriber_that_fails_makes_the_file_damaged() -> None:
    result = read_material(ref("call.wav", "audio/wav"), WAV, transcriber=BrokenTranscriber())
    assert [p.code for p in result.problems] == ["damaged"]
    assert "decoder error" in result.problems[0].message


def test_a_recording_without_speech_is_empty() -> None:
    result = read_material(ref("silence.wav", "audio/wav"), WAV, transcriber=FakeTranscriber(()))
    assert [p.code for p in result.problems] == ["empty"]


# ---- robustness ----------------------------------------------------------------------------

MEDIA_TYPES = [
    "text/markdown",
    "text/plain",
    "text/html",
    "application/pdf",
    DOCX,
    "application/json",
    "text/csv",
    "application/yaml",
    "text/vtt",
    "application/x-subrip",
]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(MEDIA_TYPES),
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        st.sampled_from(
            [b"[]", b"{}", b"null", b'{"tools": [{"type": "function"}]}', b"PK\x03\x04"]
        ),
    ),
)
def test_any_bytes_give_a_result_or_a_specific_problem(media_type: str, data: bytes) -> None:
    """Property: whatever the bytes, reading returns; a file that yields nothing has a problem,
    and no problem comes from the last-resort handler (each reader handles its own failures)."""
    result = read_material(ref("upload", media_type), data)
    if result.kind is None:
        assert result.problems
    assert not any(p.message.startswith("Deputy could not read") for p in result.problems)
