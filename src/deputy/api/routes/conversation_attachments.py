"""Files attached to a conversation: the customer uploads one (multipart; the web chat's
upload button, with a widget session's token), members download it."""

from __future__ import annotations

import re
from typing import Annotated, Final
from urllib.parse import quote

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.responses import StreamingResponse

from deputy.api.deps import PlatformDep, PrincipalDep
from deputy.domain.widget import AttachmentUpload
from deputy.services import conversation_attachments as svc

router = APIRouter(tags=["conversations"])

UPLOAD_PATH: Final = re.compile(r"^/v1/conversations/[^/]+/attachments$")


def is_upload_path(path: str) -> bool:
    """Whether `path` takes an attachment (multipart: the larger body limit applies)."""
    return UPLOAD_PATH.match(path) is not None


@router.post(
    "/conversations/{conversation_id}/attachments",
    status_code=status.HTTP_201_CREATED,
    response_model=AttachmentUpload,
)
async def upload_attachment(
    conversation_id: str,
    file: Annotated[UploadFile, File(description="An image, a PDF or a text file.")],
    platform: PlatformDep,
    principal: PrincipalDep,
    text: Annotated[
        str | None, Form(max_length=2000, description="A message sent with the file.")
    ] = None,
) -> AttachmentUpload:
    """Attach a file (multipart field `file`, optional `text`) when the agent's spec allows
    uploads (`channels.chat.allow_uploads`). Its type is decided from its bytes: images, PDF
    and text; executables are refused. It is announced in the transcript as the customer
    message `[attachment: <name> (<type>, <size> bytes)]`, which the agent answers."""
    return await svc.upload_attachment(
        platform, principal, conversation_id, file.file, file.filename, caption=text
    )


@router.get(
    "/conversations/{conversation_id}/attachments/{attachment_id}",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The bytes, with the media type detected at upload",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def download_attachment(
    conversation_id: str, attachment_id: str, platform: PlatformDep, principal: PrincipalDep
) -> StreamingResponse:
    """An attachment's bytes, for the workspace's members and services (always as a download:
    the browser never renders a customer's file in Deputy's origin)."""
    attachment, chunks = svc.attachment_content(platform, principal, conversation_id, attachment_id)
    return StreamingResponse(
        chunks,
        media_type=attachment.media_type,
        headers={
            "ETag": f'"{attachment.sha256}"',
            "Content-Length": str(attachment.size_bytes),
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(attachment.filename)}",
            "Content-Security-Policy": "sandbox",
        },
    )
