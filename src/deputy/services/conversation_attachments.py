"""Files a customer attaches to a conversation (the web chat's upload button).

Allowed only when the answering spec says so (`channels.chat.allow_uploads`). The type is
decided from the bytes, not from what the client claims: images (PNG, JPEG, GIF, WebP), PDF and
UTF-8 text; executables and anything else are refused, as is a name that promises another type
than the bytes. The bytes go to the blob store (with a small JSON record beside them: name, type,
size, hash, conversation), then the upload is announced as a customer message the agent reads,
`[attachment: <name> (<type>, <size> bytes)]` (the format the channel gateway uses), which runs
the agent's turn. Members download attachments; the customer's own token cannot read them back.
"""

from __future__ import annotations

import io
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import PurePath
from typing import BinaryIO, Final

import anyio.to_thread

from deputy.config import Settings
from deputy.domain import resources as r
from deputy.domain.errors import (
    DeputyError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unavailable,
    UnsupportedMediaType,
)
from deputy.domain.tenancy import Principal
from deputy.domain.widget import AttachmentUpload, ConversationAttachment
from deputy.services.access import require, tenant
from deputy.services.conversation_messages import post_message
from deputy.services.conversation_store import agent_spec, load_conversation, not_closed
from deputy.services.materials import clean_filename
from deputy.services.platform import Platform
from deputy.store.blobs import BlobTooLarge
from deputy.store.tables import utcnow

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
"""The most an attachment may weigh (less when the platform's upload limit is lower)."""
SNIFF_BYTES = 8192
ID_PREFIX: Final = "att_"
_ID = re.compile(r"^att_[0-9a-f]{32}$")

IMAGE_SIGNATURES: Final[tuple[tuple[bytes, str], ...]] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
TEXT_BY_SUFFIX: Final[dict[str, str]] = {
    ".txt": "text/plain",
    ".log": "text/plain",
    ".md": "text/markdown",
    ".csv": "text/csv",
    ".json": "application/json",
}
BINARY_BY_SUFFIX: Final[dict[str, str]] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".pdf": "application/pdf",
}
UPLOAD_TYPES: Final = frozenset({*BINARY_BY_SUFFIX.values(), *TEXT_BY_SUFFIX.values()})
EXECUTABLE_SIGNATURES: Final = (
    b"MZ",  # Windows PE
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",  # Mach-O
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal, Java class
    b"#!",  # scripts
    b"\x00asm",  # WebAssembly
)
EXECUTABLE_SUFFIXES: Final = frozenset(
    {
        *(".exe", ".dll", ".com", ".scr", ".msi", ".bat", ".cmd", ".ps1", ".vbs", ".lnk"),
        *(".js", ".mjs", ".jar", ".sh", ".bash", ".py", ".pl", ".rb", ".php"),
        *(".apk", ".app", ".bin", ".so", ".dylib"),
        *(".html", ".htm", ".xhtml", ".svg", ".hta"),
    }
)
"""Refused whatever the bytes look like: what a browser or a shell would run."""


def max_attachment_bytes(settings: Settings) -> int:
    return min(MAX_ATTACHMENT_BYTES, settings.max_upload_bytes)


_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")
"""Bytes that text does not contain (tab, newlines, form feed and escape aside)."""


def _is_text(head: bytes) -> bool:
    if _CONTROL.search(head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut at the end of the window
    return True


def attachment_type(head: bytes, filename: str) -> str:
    """The media type of an upload from its first bytes and its name; refuses executables,
    unknown types and names that promise another type than the bytes."""
    suffix = PurePath(filename).suffix.lower()
    if suffix in EXECUTABLE_SUFFIXES or head.startswith(EXECUTABLE_SIGNATURES):
        raise UnsupportedMediaType(
            "executable files and scripts are not accepted", details={"filename": filename}
        )
    found = next((kind for magic, kind in IMAGE_SIGNATURES if head.startswith(magic)), None)
    if found is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        found = "image/webp"
    if found is None and head.startswith(b"%PDF-"):
        found = "application/pdf"
    if found is None and head and _is_text(head):
        found = TEXT_BY_SUFFIX.get(suffix, "text/plain")
    if found is None:
        raise UnsupportedMediaType(
            "accepted attachments: images (PNG, JPEG, GIF, WebP), PDF and text",
            details={"accepted": sorted(UPLOAD_TYPES)},
        )
    promised = BINARY_BY_SUFFIX.get(suffix) or TEXT_BY_SUFFIX.get(suffix)
    if promised is not None and promised != found:
        raise UnsupportedMediaType(
            f"the file is named {suffix} but its content is {found}",
            details={"filename": filename, "detected": found},
        )
    return found


def _uploads_allowed(platform: Platform, principal: Principal, conversation_id: str) -> None:
    with tenant(platform, principal, "conversations:write") as session:
        row = load_conversation(session, principal, conversation_id)
        not_closed(row)
        spec = agent_spec(session, row.current_agent_id, row.current_agent_version)
        if not spec.channels.chat.allow_uploads:
            raise PermissionDenied(
                "this agent does not accept files (its spec's channels.chat.allow_uploads)"
            )


def _meta_name(attachment_id: str) -> str:
    return f"{attachment_id}.json"


def _store(
    platform: Platform,
    principal: Principal,
    conversation_id: str,
    source: BinaryIO,
    filename: str | None,
) -> ConversationAttachment:
    """Sniff and store the bytes and their record (blocking file work)."""
    name = clean_filename(filename)
    head = source.read(SNIFF_BYTES)
    if not head:
        raise InvalidRequest("the file is empty", details={"field": "file"})
    media_type = attachment_type(head, name)
    source.seek(0)
    limit = max_attachment_bytes(platform.settings)
    attachment_id = ID_PREFIX + secrets.token_hex(16)
    workspace = principal.workspace_id
    try:
        blob = platform.blobs.put(workspace, attachment_id, source, max_bytes=limit)
    except BlobTooLarge as exc:
        raise PayloadTooLarge(
            f"the file is larger than {limit} bytes", details={"limit": limit}
        ) from exc
    attachment = ConversationAttachment(
        id=attachment_id,
        conversation_id=conversation_id,
        filename=name,
        media_type=media_type,
        size_bytes=blob.size_bytes,
        sha256=blob.sha256,
        created_at=utcnow(),
    )
    record = attachment.model_dump_json().encode()
    platform.blobs.put(
        workspace, _meta_name(attachment_id), io.BytesIO(record), max_bytes=len(record)
    )
    return attachment


def _forget(platform: Platform, workspace_id: str, attachment_id: str) -> None:
    platform.blobs.delete(workspace_id, _meta_name(attachment_id))
    platform.blobs.delete(workspace_id, attachment_id)


def announcement(attachment: ConversationAttachment, caption: str | None) -> str:
    """The customer message the agent reads for an upload."""
    line = (
        f"[attachment: {attachment.filename} ({attachment.media_type}, "
        f"{attachment.size_bytes} bytes)]"
    )
    return f"{caption.strip()}\n{line}" if caption and caption.strip() else line


async def upload_attachment(
    platform: Platform,
    principal: Principal,
    conversation_id: str,
    source: BinaryIO,
    filename: str | None,
    *,
    caption: str | None = None,
) -> AttachmentUpload:
    """Store a customer's file and announce it in the conversation (running the agent's turn).
    A file stored but never announced (the conversation closed meanwhile) is deleted again."""
    require(principal, "conversations:write")
    await platform.db.run(_uploads_allowed, platform, principal, conversation_id)
    attachment = await anyio.to_thread.run_sync(
        _store, platform, principal, conversation_id, source, filename
    )
    message = r.MessageCreate(
        text=announcement(attachment, caption)[:8000], client_message_id=attachment.id
    )
    try:
        turn = await post_message(platform, principal, conversation_id, message)
    except DeputyError as failure:
        # `Unavailable`: the message is on record and its turn failed; the file stays with it
        if not isinstance(failure, Unavailable):
            _forget(platform, principal.workspace_id, attachment.id)
        raise
    return AttachmentUpload(attachment=attachment, turn=turn)


def _record(platform: Platform, workspace_id: str, attachment_id: str) -> ConversationAttachment:
    if not _ID.match(attachment_id) or not platform.blobs.exists(
        workspace_id, _meta_name(attachment_id)
    ):
        raise NotFound("attachment", attachment_id)
    raw = b"".join(platform.blobs.read_chunks(workspace_id, _meta_name(attachment_id)))
    return ConversationAttachment.model_validate(json.loads(raw))


def attachment_content(
    platform: Platform, principal: Principal, conversation_id: str, attachment_id: str
) -> tuple[ConversationAttachment, Iterator[bytes]]:
    """An attachment and its bytes, for the workspace's members and services (a channel key or
    a widget session's token gets no file back)."""
    if principal.key_kind == "channel":
        raise PermissionDenied("attachments are downloaded by the workspace's members")
    with tenant(platform, principal, "conversations:read") as session:
        load_conversation(session, principal, conversation_id)
    attachment = _record(platform, principal.workspace_id, attachment_id)
    if attachment.conversation_id != conversation_id:
        raise NotFound("attachment", attachment_id)
    return attachment, platform.blobs.read_chunks(principal.workspace_id, attachment_id)
