"""The web chat widget's resources: a widget session (a conversation plus the token that may use
only it) and the files a customer attaches to a conversation."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from deputy.domain.resources import ConversationStatus, Resource, TurnResult


class WidgetSession(Resource):
    """A web chat session, started with the page's widget key: a conversation on channel `chat`
    and a token that reads and writes that conversation and nothing else."""

    conversation_id: str
    agent_id: str
    status: ConversationStatus
    token: str = Field(
        description="Bearer token for this conversation only (REST, SSE, WebSocket, uploads)."
    )
    expires_at: datetime = Field(description="When the token stops working; refresh before.")
    title: str = Field(description="The agent's persona name, for the chat header.")
    allow_uploads: bool = Field(description="Whether the agent's spec accepts file uploads.")
    max_upload_bytes: int
    upload_types: list[str] = Field(description="Media types an upload may have.")


class ConversationAttachment(Resource):
    """A file a customer attached to a conversation (its bytes are in the blob store)."""

    id: str
    conversation_id: str
    filename: str
    media_type: str
    size_bytes: int
    sha256: str
    created_at: datetime


class AttachmentUpload(Resource):
    """An upload: the stored file and the turn of the customer message that announced it."""

    attachment: ConversationAttachment
    turn: TurnResult
