"""knowledge: documents and chunks per agent

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import deputy.store.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "knowledge_indexes",
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("updated_at", deputy.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_knowledge_indexes_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_knowledge_indexes_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_knowledge_indexes")),
    )
    with op.batch_alter_table("knowledge_indexes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_knowledge_indexes_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "knowledge_documents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("material_id", sa.String(length=40), nullable=True),
        sa.Column("media_type", sa.String(length=120), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("embedding_model", sa.String(length=200), nullable=False),
        sa.Column("signature", sa.String(length=300), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", deputy.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", deputy.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_knowledge_documents_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["material_id"],
            ["materials.id"],
            name=op.f("fk_knowledge_documents_material_id_materials"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_knowledge_documents_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_documents")),
        sa.UniqueConstraint("agent_id", "title", name=op.f("uq_knowledge_documents_agent_id")),
    )
    with op.batch_alter_table("knowledge_documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_knowledge_documents_material_id"), ["material_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_knowledge_documents_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "knowledge_chunks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("document_id", sa.String(length=40), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("heading_path", sa.JSON(), nullable=False),
        sa.Column("char_start", sa.Integer(), nullable=False),
        sa.Column("char_end", sa.Integer(), nullable=False),
        sa.Column("locator_kind", sa.String(length=20), nullable=False),
        sa.Column("locator_start", sa.Integer(), nullable=False),
        sa.Column("locator_end", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_knowledge_chunks_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["knowledge_documents.id"],
            name=op.f("fk_knowledge_chunks_document_id_knowledge_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_knowledge_chunks_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_chunks")),
    )
    with op.batch_alter_table("knowledge_chunks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_knowledge_chunks_agent_id"), ["agent_id"], unique=False
        )
        batch_op.create_index(
            "ix_knowledge_chunks_document_id_ordinal", ["document_id", "ordinal"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_knowledge_chunks_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("knowledge_chunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_knowledge_chunks_workspace_id"))
        batch_op.drop_index("ix_knowledge_chunks_document_id_ordinal")
        batch_op.drop_index(batch_op.f("ix_knowledge_chunks_agent_id"))
    op.drop_table("knowledge_chunks")

    with op.batch_alter_table("knowledge_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_knowledge_documents_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_knowledge_documents_material_id"))
    op.drop_table("knowledge_documents")

    with op.batch_alter_table("knowledge_indexes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_knowledge_indexes_workspace_id"))
    op.drop_table("knowledge_indexes")
