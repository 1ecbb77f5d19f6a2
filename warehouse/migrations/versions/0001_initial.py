"""The warehouse as the walking skeleton made it: institutions, batches, five data tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

DATA_COLUMNS = {  # table: (column, type, nullable), after the four columns every data table has
    "k12_enrollment": [
        ("birth_year", sa.SmallInteger, False),
        ("school", sa.String(8), False),
        ("grade_level", sa.SmallInteger, False),
        ("gender", sa.String(1), False),
        ("ethnicity", sa.String(40), False),
        ("english_learner", sa.Boolean, False),
        ("socioecon_disadvantaged", sa.Boolean, False),
        ("disability", sa.Boolean, False),
        ("ag_complete", sa.Boolean, True),
        ("graduated", sa.Boolean, True),
    ],
    "cc_students": [
        ("birth_year", sa.SmallInteger, False),
        ("gender", sa.String(1), False),
        ("ethnicity", sa.String(40), False),
        ("first_term", sa.String(6), False),
        ("first_time", sa.Boolean, False),
        ("promise_grant", sa.Boolean, False),
    ],
    "cc_courses": [
        ("term", sa.String(6), False),
        ("subject", sa.String(5), False),
        ("course_number", sa.String(4), False),
        ("transfer_level", sa.Boolean, False),
        ("math_english", sa.String(1), True),
        ("units", sa.Float, False),
        ("grade", sa.String(2), False),
    ],
    "cc_awards": [
        ("term", sa.String(6), False),
        ("award", sa.String(20), False),
    ],
    "univ_students": [
        ("birth_year", sa.SmallInteger, False),
        ("entry_term", sa.String(6), False),
        ("admission_basis", sa.String(10), False),
        ("major", sa.String(40), False),
        ("gpa", sa.Float, False),
        ("degree", sa.String(2), True),
        ("degree_term", sa.String(6), True),
    ],
}


def upgrade() -> None:
    op.create_table(
        "institutions",
        sa.Column("code", sa.String(8), primary_key=True),
        sa.Column("segment", sa.String(4), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "institution_names",
        sa.Column("code", sa.String(8), sa.ForeignKey("institutions.code"), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("institution", sa.String(8), sa.ForeignKey("institutions.code"), nullable=False),
        sa.Column("year", sa.String(7), nullable=False),
        sa.Column("table_name", sa.String(40), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loaded_by", sa.String(100), nullable=False),
        sa.Column("replaced_by", sa.Integer, nullable=True),
    )
    op.create_index("ix_batches_scope", "batches", ["institution", "year", "table_name"])
    for name, columns in DATA_COLUMNS.items():
        op.create_table(
            name,
            sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id"), nullable=False),
            sa.Column("institution", sa.String(8), sa.ForeignKey("institutions.code"), nullable=False),
            sa.Column("year", sa.String(7), nullable=False),
            sa.Column("student_key", sa.String(32), nullable=False),
            *[sa.Column(name, kind, nullable=nullable) for name, kind, nullable in columns],
        )
        for column in ("batch_id", "institution", "student_key"):
            op.create_index(f"ix_{name}_{column}", name, [column])


def downgrade() -> None:
    for name in reversed(list(DATA_COLUMNS)):
        op.drop_table(name)
    op.drop_index("ix_batches_scope", "batches")
    op.drop_table("batches")
    op.drop_table("institution_names")
    op.drop_table("institutions")
