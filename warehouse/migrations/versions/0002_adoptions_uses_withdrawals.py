"""Element-set adoptions, approved uses and their grants, withdrawn batches.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("withdrawn_by", sa.String(100), nullable=True))
    op.create_table(
        "element_adoptions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("year", sa.String(7), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("adopted_by", sa.String(100), nullable=False),
        sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_element_adoptions_year", "element_adoptions", ["year"])
    op.create_table(
        "uses",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_by", sa.String(100), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "use_elements",
        sa.Column("use_name", sa.String(40), sa.ForeignKey("uses.name"), primary_key=True),
        sa.Column("table_name", sa.String(40), primary_key=True),
        sa.Column("column_name", sa.String(40), primary_key=True),
    )
    op.create_table(
        "use_institutions",
        sa.Column("use_name", sa.String(40), sa.ForeignKey("uses.name"), primary_key=True),
        sa.Column("institution", sa.String(8), sa.ForeignKey("institutions.code"), primary_key=True),
    )
    op.create_table(
        "use_grants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("use_name", sa.String(40), sa.ForeignKey("uses.name"), nullable=False),
        sa.Column("user_name", sa.String(32), nullable=False),
        sa.Column("granted_by", sa.String(100), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_by", sa.String(100), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_use_grants_use_name", "use_grants", ["use_name"])


def downgrade() -> None:
    op.drop_index("ix_use_grants_use_name", "use_grants")
    op.drop_table("use_grants")
    op.drop_table("use_institutions")
    op.drop_table("use_elements")
    op.drop_table("uses")
    op.drop_index("ix_element_adoptions_year", "element_adoptions")
    op.drop_table("element_adoptions")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("withdrawn_by")
        batch.drop_column("withdrawn_at")
