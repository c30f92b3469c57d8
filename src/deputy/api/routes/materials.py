from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile, status
from fastapi.responses import StreamingResponse

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.domain import resources as r
from deputy.services import materials as svc

router = APIRouter(tags=["materials"])


@router.post("/materials", status_code=status.HTTP_201_CREATED, response_model=r.Material)
def upload_material(
    file: Annotated[UploadFile, File(description="The document, transcript or recording.")],
    platform: PlatformDep,
    principal: PrincipalDep,
) -> r.Material:
    """Upload one file (multipart field `file`). Its type is sniffed from its bytes."""
    return svc.upload_material(platform, principal, file.file, file.filename)


@router.get("/materials", response_model=r.Page[r.Material])
def list_materials(
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[r.Material]:
    return svc.list_materials(platform, principal, limit=limit, cursor=cursor)


@router.get("/materials/{material_id}", response_model=r.Material)
def get_material(material_id: str, platform: PlatformDep, principal: PrincipalDep) -> r.Material:
    return svc.get_material(platform, principal, material_id)


@router.get(
    "/materials/{material_id}/content",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The bytes, with the media type detected at upload",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def material_content(
    material_id: str, platform: PlatformDep, principal: PrincipalDep
) -> StreamingResponse:
    """The uploaded bytes, as stored."""
    material, chunks = svc.material_content(platform, principal, material_id)
    return StreamingResponse(
        chunks,
        media_type=material.media_type,
        headers={
            "ETag": f'"{material.sha256}"',
            "Content-Length": str(material.size_bytes),
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": "attachment",
        },
    )


@router.delete("/materials/{material_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_material(material_id: str, platform: PlatformDep, principal: PrincipalDep) -> None:
    svc.delete_material(platform, principal, material_id)
