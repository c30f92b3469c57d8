"""Uploaded source material (SOPs, policies, transcripts, recordings, API descriptions).

The bytes are sniffed, hashed, size-limited and written to the blob store before the row is
committed, so an acknowledged upload is always readable."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from sqlalchemy import select

from deputy.domain import resources as r
from deputy.domain.errors import InvalidRequest, NotFound, PayloadTooLarge
from deputy.domain.ids import new_id
from deputy.domain.tenancy import Principal
from deputy.services.access import require, tenant
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.services.sniff import DOCX, SNIFF_BYTES, check_docx, sniff
from deputy.store import tables as t
from deputy.store.blobs import BlobTooLarge

_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def clean_filename(filename: str | None) -> str:
    name = _UNSAFE_NAME.sub("_", (filename or "").strip()).strip(". ")
    if not name:
        raise InvalidRequest("the upload needs a file name", details={"field": "file"})
    return name[:255]


def upload_material(
    platform: Platform, principal: Principal, source: BinaryIO, filename: str | None
) -> r.Material:
    require(principal, "materials:write")
    name = clean_filename(filename)
    media_type = sniff(source.read(SNIFF_BYTES), name)
    source.seek(0)
    if media_type == DOCX:
        check_docx(source, name)
        source.seek(0)
    limit = platform.settings.max_upload_bytes
    material_id = new_id("mat")
    try:
        blob = platform.blobs.put(principal.workspace_id, material_id, source, max_bytes=limit)
    except BlobTooLarge as exc:
        raise PayloadTooLarge(
            f"the file is larger than {limit} bytes", details={"limit": limit}
        ) from exc
    try:
        with tenant(platform, principal, "materials:write") as session:
            row = t.Material(
                id=material_id,
                workspace_id=principal.workspace_id,
                filename=name,
                media_type=media_type,
                size_bytes=blob.size_bytes,
                sha256=blob.sha256,
                created_by_key_id=principal.key_id,
            )
            session.add(row)
            session.flush()
            return r.Material.model_validate(row)
    except BaseException:
        platform.blobs.delete(principal.workspace_id, material_id)
        raise


def list_materials(
    platform: Platform, principal: Principal, *, limit: int, cursor: str | None
) -> r.Page[r.Material]:
    with tenant(platform, principal, "materials:read") as session:
        return paginate(
            session,
            select(t.Material),
            t.Material.id,
            limit=limit,
            cursor=cursor,
            to_resource=r.Material.model_validate,
        )


def _row(platform: Platform, principal: Principal, material_id: str) -> t.Material:
    with tenant(platform, principal, "materials:read") as session:
        row = session.scalar(select(t.Material).where(t.Material.id == material_id))
        if row is None:
            raise NotFound("material", material_id)
        return row


def get_material(platform: Platform, principal: Principal, material_id: str) -> r.Material:
    return r.Material.model_validate(_row(platform, principal, material_id))


def material_content(
    platform: Platform, principal: Principal, material_id: str
) -> tuple[r.Material, Iterator[bytes]]:
    row = _row(platform, principal, material_id)
    return r.Material.model_validate(row), platform.blobs.read_chunks(row.workspace_id, row.id)


def delete_material(platform: Platform, principal: Principal, material_id: str) -> None:
    with tenant(platform, principal, "materials:write") as session:
        row = session.scalar(select(t.Material).where(t.Material.id == material_id))
        if row is None:
            raise NotFound("material", material_id)
        session.delete(row)
    # The row is gone (committed) before the bytes are: a crash in between leaves an orphan
    # file, never a listed material without its content.
    platform.blobs.delete(principal.workspace_id, material_id)
