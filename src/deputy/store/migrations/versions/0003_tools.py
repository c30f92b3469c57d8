"""tools: tool sources, credentials, call ledger

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import deputy.store.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tool_sources",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("auth_type", sa.String(length=40), nullable=False),
        sa.Column("credentials_encrypted", sa.Text(), nullable=True),
        sa.Column("created_at", deputy.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", deputy.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_tool_sources_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_sources")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_tool_sources_workspace_id")),
    )
    with op.batch_alter_table("tool_sources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tool_sources_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "tool_calls",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("agent_version", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.String(length=100), nullable=False),
        sa.Column("step_key", sa.String(length=200), nullable=False),
        sa.Column("tool", sa.String(length=200), nullable=False),
        sa.Column("effect", sa.String(length=20), nullable=True),
        sa.Column("idempotency_key", sa.String(length=80), nullable=True),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("arguments_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", deputy.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", deputy.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_tool_calls_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_tool_calls_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_calls")),
        sa.UniqueConstraint(
            "workspace_id", "idempotency_key", name=op.f("uq_tool_calls_workspace_id")
        ),
    )
    with op.batch_alter_table("tool_calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tool_calls_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(
            "ix_tool_calls_conversation",
            ["workspace_id", "conversation_id", "tool"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_tool_calls_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tool_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tool_calls_workspace_id"))
        batch_op.drop_index("ix_tool_calls_conversation")
        batch_op.drop_index(batch_op.f("ix_tool_calls_agent_id"))

    op.drop_table("tool_calls")
    with op.batch_alter_table("tool_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tool_sources_workspace_id"))

    op.drop_table("tool_sources")
