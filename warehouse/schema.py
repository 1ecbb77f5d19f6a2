"""The warehouse tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Data tables hold only coded, pseudonymized rows: the institution's secret code, the academic
year, the keyed-HMAC student key, and the agreed non-identifier elements. Institution names
live only in ``institution_names``, which only administrators read. Every data row belongs
to an upload batch, so a corrected file replaces exactly the rows of the batch before it, and
a withdrawal marks the batches it removed.

Beside the data: ``element_adoptions`` records who adopted which element-set file and when
(principle 9), and ``uses``, ``use_elements``, ``use_institutions`` and ``use_grants`` hold
the approved uses (principles 2 and 3) and who may work on them.

This module is the schema at the newest migration; the database gets there only through the
migrations in ``warehouse/migrations`` (``warehouse.db.create_schema`` upgrades to head).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData()

institutions = Table(
    "institutions",
    metadata,
    Column("code", String(8), primary_key=True),
    Column("segment", String(4), nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

institution_names = Table(
    "institution_names",
    metadata,
    Column("code", String(8), ForeignKey("institutions.code"), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
)

batches = Table(
    "batches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("institution", String(8), ForeignKey("institutions.code"), nullable=False),
    Column("year", String(7), nullable=False),
    Column("table_name", String(40), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    Column("loaded_by", String(100), nullable=False),
    # NULL while current; the id of the batch that replaced it otherwise.
    Column("replaced_by", Integer, nullable=True),
    # Set when the institution withdrew the batch's rows (principle 2); the record stays.
    Column("withdrawn_at", DateTime(timezone=True), nullable=True),
    Column("withdrawn_by", String(100), nullable=True),
    Index("ix_batches_scope", "institution", "year", "table_name"),
)

element_adoptions = Table(
    "element_adoptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("year", String(7), nullable=False, index=True),
    Column("file_name", String(255), nullable=False),
    # SHA-256 over the year's file and every file it extends, oldest last.
    Column("checksum", String(64), nullable=False),
    Column("adopted_by", String(100), nullable=False),
    Column("adopted_at", DateTime(timezone=True), nullable=False),
)

uses = Table(
    "uses",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("purpose", Text, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Set when the use ended; its extract is deleted, its record and grants stay.
    Column("removed_by", String(100), nullable=True),
    Column("removed_at", DateTime(timezone=True), nullable=True),
)

use_elements = Table(
    "use_elements",
    metadata,
    Column("use_name", String(40), ForeignKey("uses.name"), primary_key=True),
    Column("table_name", String(40), primary_key=True),
    Column("column_name", String(40), primary_key=True),
)

use_institutions = Table(
    "use_institutions",
    metadata,
    Column("use_name", String(40), ForeignKey("uses.name"), primary_key=True),
    Column("institution", String(8), ForeignKey("institutions.code"), primary_key=True),
)

use_grants = Table(
    "use_grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("use_name", String(40), ForeignKey("uses.name"), nullable=False, index=True),
    Column("user_name", String(32), nullable=False),
    Column("granted_by", String(100), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("revoked_by", String(100), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


def _data_table(name: str, *columns: Column) -> Table:
    return Table(
        name,
        metadata,
        Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False, index=True),
        Column("institution", String(8), ForeignKey("institutions.code"), nullable=False, index=True),
        Column("year", String(7), nullable=False),
        Column("student_key", String(32), nullable=False, index=True),
        *columns,
    )


k12_enrollment = _data_table(
    "k12_enrollment",
    Column("birth_year", SmallInteger, nullable=False),
    Column("school", String(8), nullable=False),
    Column("grade_level", SmallInteger, nullable=False),
    Column("gender", String(1), nullable=False),
    Column("ethnicity", String(40), nullable=False),
    Column("english_learner", Boolean, nullable=False),
    Column("socioecon_disadvantaged", Boolean, nullable=False),
    Column("disability", Boolean, nullable=False),
    Column("ag_complete", Boolean, nullable=True),
    Column("graduated", Boolean, nullable=True),
)

cc_students = _data_table(
    "cc_students",
    Column("birth_year", SmallInteger, nullable=False),
    Column("gender", String(1), nullable=False),
    Column("ethnicity", String(40), nullable=False),
    Column("first_term", String(6), nullable=False),
    Column("first_time", Boolean, nullable=False),
    Column("promise_grant", Boolean, nullable=False),
)

cc_courses = _data_table(
    "cc_courses",
    Column("term", String(6), nullable=False),
    Column("subject", String(5), nullable=False),
    Column("course_number", String(4), nullable=False),
    Column("transfer_level", Boolean, nullable=False),
    Column("math_english", String(1), nullable=True),
    Column("units", Float, nullable=False),
    Column("grade", String(2), nullable=False),
)

cc_awards = _data_table(
    "cc_awards",
    Column("term", String(6), nullable=False),
    Column("award", String(20), nullable=False),
)

univ_students = _data_table(
    "univ_students",
    Column("birth_year", SmallInteger, nullable=False),
    Column("entry_term", String(6), nullable=False),
    Column("admission_basis", String(10), nullable=False),
    Column("major", String(40), nullable=False),
    Column("gpa", Float, nullable=False),
    Column("degree", String(2), nullable=True),
    Column("degree_term", String(6), nullable=True),
)

DATA_TABLES: dict[str, Table] = {
    table.name: table for table in (k12_enrollment, cc_students, cc_courses, cc_awards, univ_students)
}
