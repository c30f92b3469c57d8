"""Small real documents for the knowledge tests: PDFs written byte by byte (with a correct
cross-reference table, so pypdf reads them without repair) and DOCX files made by python-docx."""

from __future__ import annotations

import io
from collections.abc import Sequence

import docx
from pypdf import PdfReader, PdfWriter

Line = tuple[float, str]  # (font size, text); an empty text leaves a blank line


def make_pdf(pages: Sequence[Sequence[Line]], *, title: str | None = None) -> bytes:
    """A PDF with one Helvetica text line per entry, top to bottom, on US-letter pages."""
    objects: list[bytes] = [b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", b""]
    pages_ref = 2
    kids: list[int] = []
    for lines in pages:
        y = 760.0
        ops = []
        for size, text in lines:
            if text:
                escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
                ops.append(f"BT /F1 {size} Tf 72 {y:.1f} Td ({escaped}) Tj ET")
            y -= size + 8
        stream = "\n".join(ops).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content = len(objects)
        objects.append(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 1 0 R >> >> >>" % (pages_ref, content)
        )
        kids.append(len(objects))
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    objects[pages_ref - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))
    objects.append(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_ref)
    catalog = len(objects)
    info = None
    if title is not None:
        objects.append(b"<< /Title (%s) >>" % title.encode("latin-1"))
        info = len(objects)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    trailer = b"/Size %d /Root %d 0 R" % (len(objects) + 1, catalog)
    if info is not None:
        trailer += b" /Info %d 0 R" % info
    out += b"trailer\n<< %s >>\nstartxref\n%d\n%%%%EOF\n" % (trailer, xref)
    return bytes(out)


def encrypt_pdf(data: bytes, *, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner-pw", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_docx() -> bytes:
    """A refunds policy: title, headings, a lead-in with a bulleted list, a table."""
    document = docx.Document()
    document.core_properties.title = "Refunds handbook"
    document.add_heading("Refunds", level=1)
    document.add_paragraph("Refunds go back to the original payment method within 5 days.")
    document.add_heading("Gift cards", level=2)
    document.add_paragraph("A gift card refund is possible when:")
    document.add_paragraph("the card is not expired", style="List Bullet")
    document.add_paragraph("the balance covers the difference", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Method"
    table.cell(0, 1).text = "Delay"
    table.cell(1, 0).text = "Gift card"
    table.cell(1, 1).text = "Immediate"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def empty_docx() -> bytes:
    buffer = io.BytesIO()
    docx.Document().save(buffer)
    return buffer.getvalue()
