"""Tests for warehouse.upload: a valid file loads typed and pseudonymized; the same file
changes nothing and a corrected one replaces its batch; every kind of bad file is refused
with a message naming the file and the problem, and leaves the warehouse as it was. Every
test runs on SQLite and on a real PostgreSQL server (the ``warehouse_url`` fixture)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from select import select as wait_readable

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

import warehouse.upload as upload_module
from warehouse.db import connect
from warehouse.elements import load_element_set
from warehouse.exceptions import ElementSetError, UnknownInstitution, UploadRejected, WarehouseError
from warehouse.institutions import add_institution
from warehouse.pseudonymize import StudentKeyer
from warehouse.read import read_table
from warehouse.schema import DATA_TABLES, batches
from warehouse.upload import upload

REPO = Path(__file__).resolve().parents[1]
SECRET = b"upload-test-secret"
KEYER = StudentKeyer(SECRET)
IDENTIFIERS = ["ssid", "local_id", "first_name", "last_name", "birth_date"]
FIRST_NAMES = ["Xiomara", "Bartholomew", "Quetzalli", "Thaddeus", "Wilhelmina"]
LAST_NAMES = ["Zyzzyvarian", "Quillfeather", "Oxenbridge", "Vasquez-Abernathy", "Pemberton"]


def columns(table: str, year: str = "2024-25") -> list[str]:
    return list(load_element_set(year).table(table).column_names)


def k12_row(i: int, **changes: str) -> dict[str, str]:
    """A valid k12_enrollment row for 2023-24 (``i`` makes the student unique)."""
    row = {
        "ssid": f"{7300000000 + i}",
        "local_id": f"LID{900000 + i}",
        "first_name": FIRST_NAMES[i % 5],
        "last_name": LAST_NAMES[i % 5],
        "birth_date": f"2006-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
        "school": "VVHS",
        "grade_level": str(9 + i % 4),
        "gender": "FMX"[i % 3],
        "ethnicity": ["Asian", "White", "Hispanic/Latino", "Filipino"][i % 4],
        "english_learner": "YN"[i % 2],
        "socioecon_disadvantaged": "N",
        "disability": "YN"[i % 3 == 0],
        "ag_complete": ("Y" if i % 2 else "N") if 9 + i % 4 == 12 else "",
        "graduated": "Y" if 9 + i % 4 == 12 else "",
    }
    row.update(changes)
    return row


def course_row(i: int, **changes: str) -> dict[str, str]:
    """A valid cc_courses row for 2024-25."""
    row = {
        "ssid": f"{5100000000 + i}" if i % 3 else "",
        "local_id": f"A{20000000 + i}",
        "first_name": FIRST_NAMES[i % 5],
        "last_name": LAST_NAMES[i % 5],
        "birth_date": f"2005-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
        "term": ["2024FA", "2025WI", "2025SP", "2025SU"][i % 4],
        "subject": ["MATH", "ENGL", "HIST"][i % 3],
        "course_number": f"{i % 90 + 1}A",
        "transfer_level": "YN"[i % 2],
        "math_english": ["M", "E", ""][i % 3],
        "units": ["3", "4.5", "1"][i % 3],
        "grade": ["A", "B", "C", "P", "W"][i % 5],
    }
    row.update(changes)
    return row


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> Path:
    """Write ``rows`` under ``header`` (default: the keys of the first row) as UTF-8 CSV."""
    header = header or list(rows[0])
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def counts(engine) -> dict[str, int]:
    """Rows of every data table and of ``batches``."""
    with engine.connect() as conn:
        found = {name: conn.scalar(select(func.count()).select_from(t)) for name, t in DATA_TABLES.items()}
        found["batches"] = conn.scalar(select(func.count()).select_from(batches))
    return found


def batch_rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(batches.c.id, batches.c.rows, batches.c.replaced_by))]


@pytest.fixture
def engine(adopted_warehouse):
    return adopted_warehouse


@pytest.fixture
def district(engine):
    return add_institution(engine, "Valle Verde Unified School District", "k12")


@pytest.fixture
def college(engine):
    return add_institution(engine, "Sierra Alta Community College", "cc")


def load(engine, institution, path, table="cc_courses", year="2024-25"):
    return upload(engine, institution=institution, year=year, table=table, path=path, keyer=KEYER, loaded_by="tester")


# ---- a valid file --------------------------------------------------------------------------


def test_valid_file_loads_typed_and_pseudonymized(engine, district, tmp_path):
    rows = [k12_row(i) for i in range(40)]
    path = write_csv(tmp_path / "k12_enrollment_2023-24.csv", rows)

    result = load(engine, district.code, path, table="k12_enrollment", year="2023-24")

    assert (result.status, result.rows, result.replaced_batch) == ("loaded", 40, None)
    assert result.institution == district.code
    frame = read_table(engine, "k12_enrollment")
    assert len(frame) == 40
    assert list(frame.columns) == list(load_element_set("2023-24").table("k12_enrollment").stored_columns)
    assert not set(IDENTIFIERS) & set(frame.columns)
    assert set(frame["institution"]) == {district.code} and set(frame["year"]) == {"2023-24"}
    assert frame["student_key"].str.fullmatch(r"[0-9a-f]{32}").all()
    assert frame["student_key"].nunique() == 40
    assert str(frame["grade_level"].dtype) == "int64" and str(frame["birth_year"].dtype) == "int64"
    assert frame["english_learner"].dtype == bool
    assert str(frame["ag_complete"].dtype) == "boolean"
    by_row = frame.sort_values("student_key").reset_index(drop=True)
    expected = pd.DataFrame(rows)
    expected["student_key"] = KEYER.keys(expected[["ssid", "first_name", "last_name", "birth_date"]])
    expected = expected.sort_values("student_key").reset_index(drop=True)
    assert list(by_row["birth_year"]) == [int(b[:4]) for b in expected["birth_date"]]
    assert list(by_row["grade_level"]) == [int(g) for g in expected["grade_level"]]
    assert list(by_row["english_learner"]) == list(expected["english_learner"].eq("Y"))
    assert list(by_row["ag_complete"].astype(object).where(by_row["ag_complete"].notna(), "")) == list(
        expected["ag_complete"].map({"Y": True, "N": False, "": ""})
    )
    with engine.connect() as conn:
        batch = conn.execute(select(batches)).one()
    assert (batch.file_name, batch.rows, batch.loaded_by, batch.replaced_by) == (path.name, 40, "tester", None)


def stored_bytes(engine, state: Path, request) -> bytes:
    """Every byte the database keeps of this warehouse: the SQLite file, or PostgreSQL's files
    of the test's database after a checkpoint."""
    if engine.dialect.name == "sqlite":
        engine.dispose()
        return (state / "warehouse.db").read_bytes()
    with engine.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")
        oid = conn.exec_driver_sql("SELECT oid FROM pg_database WHERE datname = current_database()").scalar()
    directory = request.getfixturevalue("postgres_server").directory / "data" / "base" / str(oid)
    return b"".join(path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file())


def test_raw_identifiers_appear_nowhere_in_the_database_file(
    engine, district, college, tmp_path, isolated_state, request
):
    k12 = [k12_row(i) for i in range(40)]
    courses = [course_row(i) for i in range(40)]
    load(engine, district.code, write_csv(tmp_path / "k12.csv", k12), table="k12_enrollment", year="2023-24")
    load(engine, college.code, write_csv(tmp_path / "courses.csv", courses))

    stored = stored_bytes(engine, isolated_state, request)
    keys = read_table(engine, "cc_courses")["student_key"]
    assert keys.iloc[0].encode() in stored  # the check reads where the rows are
    raw = {row[name] for row in k12 + courses for name in IDENTIFIERS if row[name]}
    raw |= {name.upper() for name in FIRST_NAMES + LAST_NAMES}
    assert len(raw) > 200
    leaked = sorted(value for value in raw if value.encode() in stored)
    assert leaked == []


def test_same_file_again_is_unchanged(engine, college, tmp_path):
    path = write_csv(tmp_path / "courses.csv", [course_row(i) for i in range(30)])
    first = load(engine, college.code, path)
    before = counts(engine)

    again = load(engine, college.code, path)

    assert (again.status, again.batch_id, again.rows) == ("unchanged", first.batch_id, 30)
    assert again.checksum == first.checksum
    assert counts(engine) == before
    assert before["batches"] == 1 and before["cc_courses"] == 30


def test_corrected_file_replaces_the_batch_before_it(engine, college, tmp_path):
    first = load(engine, college.code, write_csv(tmp_path / "courses.csv", [course_row(i) for i in range(30)]))
    corrected = [course_row(i) for i in range(25)]
    corrected[0]["grade"] = "F"
    second = load(engine, college.code, write_csv(tmp_path / "courses-fixed.csv", corrected))

    assert (second.status, second.rows, second.replaced_batch) == ("replaced", 25, first.batch_id)
    frame = read_table(engine, "cc_courses")
    assert len(frame) == 25
    assert (frame["grade"] == "F").sum() == (pd.DataFrame(corrected)["grade"] == "F").sum()
    with engine.connect() as conn:
        old_rows = conn.scalar(select(func.count()).where(DATA_TABLES["cc_courses"].c.batch_id == first.batch_id))
        history = conn.execute(select(batches).order_by(batches.c.id)).all()
    assert old_rows == 0
    assert [(b.id, b.file_name, b.rows, b.replaced_by) for b in history] == [
        (first.batch_id, "courses.csv", 30, second.batch_id),
        (second.batch_id, "courses-fixed.csv", 25, None),
    ]
    # The original file again is a correction of the correction, not "unchanged".
    third = load(engine, college.code, tmp_path / "courses.csv")
    assert (third.status, third.replaced_batch) == ("replaced", second.batch_id)
    assert len(read_table(engine, "cc_courses")) == 30


def test_other_scopes_are_not_replaced(engine, college, tmp_path):
    other = add_institution(engine, "Costa Clara College", "cc")
    path = write_csv(tmp_path / "courses.csv", [course_row(i) for i in range(30)])
    spring = write_csv(tmp_path / "spring.csv", [course_row(i, term="2024SP") for i in range(10)])
    results = [
        load(engine, college.code, path),
        load(engine, other.code, path),
        load(engine, college.code, spring, year="2023-24"),
    ]
    assert [r.status for r in results] == ["loaded", "loaded", "loaded"]
    assert counts(engine)["cc_courses"] == 70 and counts(engine)["batches"] == 3


# ---- refused files -------------------------------------------------------------------------


def lines(rows: list[dict[str, str]]) -> list[str]:
    return [",".join(rows[0])] + [",".join(row.values()) for row in rows]


def case_too_many_fields(tmp_path, _codes):
    text = lines([course_row(i) for i in range(300)])
    text[250] += ",extra"
    path = tmp_path / "courses.csv"
    path.write_text("\n".join(text) + "\n")
    return path, {}, ["not a well-formed CSV file", "Expected 12 fields in line 251, saw 13"]


def case_first_row_too_many_fields(tmp_path, _codes):
    text = lines([course_row(i) for i in range(300)])
    text[1] += ",extra"
    path = tmp_path / "courses.csv"
    path.write_text("\n".join(text) + "\n")
    return path, {}, ["not a well-formed CSV file", "more fields than the header"]


def case_trailing_commas(tmp_path, _codes):
    text = lines([course_row(i) for i in range(300)])
    path = tmp_path / "courses.csv"
    path.write_text("\n".join(text[:1] + [line + "," for line in text[1:]]) + "\n")
    return path, {}, ["not a well-formed CSV file", "trailing comma"]


def case_not_utf8(tmp_path, _codes):
    rows = [course_row(i) for i in range(300)]
    rows[260]["first_name"] = "José"
    path = tmp_path / "courses.csv"
    path.write_bytes(("\n".join(lines(rows)) + "\n").encode("latin-1"))
    return path, {}, ["not UTF-8 text (byte 0xe9", "save the file as UTF-8"]


def case_missing_column(tmp_path, _codes):
    header = [c for c in columns("cc_courses") if c != "units"]
    path = write_csv(tmp_path / "courses.csv", [course_row(i) for i in range(10)], header)
    return path, {}, ["missing column(s) units", "The cc_courses columns are: ssid, local_id"]


def case_extra_column(tmp_path, _codes):
    rows = [course_row(i, notes="repeat") for i in range(10)]
    path = write_csv(tmp_path / "courses.csv", rows)
    return path, {}, ["column(s) not in the cc_courses data elements: notes"]


def case_duplicated_column(tmp_path, _codes):
    text = lines([course_row(i) for i in range(10)])
    text = [f"{line},{line.rsplit(',', 1)[1]}" for line in text]
    path = tmp_path / "courses.csv"
    path.write_text("\n".join(text) + "\n")
    return path, {}, ["duplicated column(s) grade"]


def case_codes_outside(tmp_path, _codes):
    rows = [course_row(i) for i in range(300)]
    rows[4]["grade"] = "Z"
    rows[280]["math_english"] = "Q"
    path = write_csv(tmp_path / "courses.csv", rows)
    return path, {}, ["2 invalid values in a file of 300 rows", "nothing was loaded"]


def case_empty(tmp_path, _codes):
    path = tmp_path / "courses.csv"
    path.write_bytes(b"")
    return path, {}, ["the file is empty"]


def case_header_only(tmp_path, _codes):
    path = tmp_path / "courses.csv"
    path.write_text(",".join(columns("cc_courses")) + "\n")
    return path, {}, ["the file has a header but no data rows"]


def case_huge_field(tmp_path, _codes):
    rows = [course_row(i) for i in range(300)]
    rows[270]["subject"] = "X" * 10_000_000
    path = write_csv(tmp_path / "courses.csv", rows)
    return path, {}, ["2 invalid values in a file of 300 rows"]  # pattern and length


def case_huge_header_field(tmp_path, _codes):
    header = columns("cc_courses") + ["X" * 10_000_000]
    path = write_csv(tmp_path / "courses.csv", [course_row(i) for i in range(10)], header)
    return path, {}, ["not a well-formed CSV file", "field larger than field limit"]


def case_no_element_set(tmp_path, _codes):
    path = write_csv(tmp_path / "courses.csv", [course_row(i) for i in range(10)])
    return path, {"year": "2031-32"}, ["no element set has been adopted for 2031-32", "2031-32.toml"]


def case_malformed_year(tmp_path, _codes):
    path = write_csv(tmp_path / "courses.csv", [course_row(i) for i in range(10)])
    return path, {"year": "2024-2025"}, ["year '2024-2025' is not an academic year"]


def case_unknown_institution(tmp_path, _codes):
    path = write_csv(tmp_path / "courses.csv", [course_row(i) for i in range(10)])
    return path, {"institution": "ZZZZZZ"}, ["no institution has the code 'ZZZZZZ'", "enclave institution list"]


def case_wrong_segment(tmp_path, codes):
    path = write_csv(tmp_path / "courses.csv", [course_row(i) for i in range(10)])
    return (
        path,
        {"institution": codes["k12"]},
        [
            "table cc_courses holds community college data",
            f"institution {codes['k12']} is a K-12 district",
            "check --institution and --table",
        ],
    )


def case_unknown_table(tmp_path, _codes):
    path = write_csv(tmp_path / "courses.csv", [course_row(i) for i in range(10)])
    return path, {"table": "cc_grades"}, ["table 'cc_grades' is not among the 2024-25 data elements"]


def case_xlsx(tmp_path, _codes):
    path = tmp_path / "courses.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    return path, {}, ["unsupported file type '.xlsx'", "upload a .csv or .parquet file"]


def case_not_parquet(tmp_path, _codes):
    path = tmp_path / "courses.parquet"
    path.write_text(",".join(columns("cc_courses")) + "\n")
    return path, {}, ["not a readable Parquet file"]


def case_missing_file(tmp_path, _codes):
    return tmp_path / "nowhere.csv", {}, ["no such file"]


def case_term_outside_year(tmp_path, _codes):
    rows = [course_row(i) for i in range(300)]
    rows[150]["term"] = "2025FA"
    rows[151]["term"] = "2024SP"
    path = write_csv(tmp_path / "courses.csv", rows)
    return path, {}, ["2 invalid values in a file of 300 rows"]


REFUSED = [
    # (builder, exception, names the uploaded file)
    pytest.param(case_too_many_fields, UploadRejected, True, id="row-with-too-many-fields"),
    pytest.param(case_first_row_too_many_fields, UploadRejected, True, id="first-row-with-too-many-fields"),
    pytest.param(case_trailing_commas, UploadRejected, True, id="trailing-commas"),
    pytest.param(case_not_utf8, UploadRejected, True, id="latin-1"),
    pytest.param(case_missing_column, UploadRejected, True, id="missing-column"),
    pytest.param(case_extra_column, UploadRejected, True, id="extra-column"),
    pytest.param(case_duplicated_column, UploadRejected, True, id="duplicated-column"),
    pytest.param(case_codes_outside, UploadRejected, True, id="codes-outside-element-set"),
    pytest.param(case_empty, UploadRejected, True, id="empty-file"),
    pytest.param(case_header_only, UploadRejected, True, id="header-only"),
    pytest.param(case_huge_field, UploadRejected, True, id="10MB-field"),
    pytest.param(case_huge_header_field, UploadRejected, True, id="10MB-header-field"),
    pytest.param(case_term_outside_year, UploadRejected, True, id="term-outside-upload-year"),
    pytest.param(case_xlsx, UploadRejected, True, id="xlsx"),
    pytest.param(case_not_parquet, UploadRejected, True, id="not-parquet"),
    pytest.param(case_missing_file, UploadRejected, True, id="no-such-file"),
    # Refused before the file is opened: the message names the argument at fault.
    pytest.param(case_no_element_set, ElementSetError, False, id="year-without-element-set"),
    pytest.param(case_malformed_year, ElementSetError, False, id="malformed-year"),
    pytest.param(case_unknown_table, ElementSetError, False, id="unknown-table"),
    pytest.param(case_unknown_institution, UnknownInstitution, False, id="unknown-institution"),
    pytest.param(case_wrong_segment, WarehouseError, False, id="table-of-another-segment"),
]


@pytest.mark.parametrize(("build", "exception", "names_file"), REFUSED)
def test_refused_file_leaves_the_warehouse_unchanged(
    engine, district, college, tmp_path, monkeypatch, build, exception, names_file
):
    # A loaded batch in the same scope, which a half-done refusal would delete or add to.
    baseline = load(engine, college.code, write_csv(tmp_path / "baseline.csv", [course_row(i) for i in range(20)]))
    before, history = counts(engine), batch_rows(engine)
    monkeypatch.setattr(upload_module, "CHUNK_ROWS", 100)  # late problems come after chunks were inserted
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    path, arguments, expected = build(uploads, {"k12": district.code, "cc": college.code})

    with pytest.raises(exception) as error:
        load(engine, **({"institution": college.code, "path": path} | arguments))

    message = str(error.value)
    if names_file:
        assert message.startswith(f"{path}: ")
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert counts(engine) == before
    assert batch_rows(engine) == history
    assert set(read_table(engine, "cc_courses")["institution"]) == {college.code}
    assert baseline.status == "loaded"


def test_report_groups_problems_and_lists_the_first_100(engine, college, tmp_path, monkeypatch):
    monkeypatch.setattr(upload_module, "CHUNK_ROWS", 300)  # row numbers must carry across chunks
    rows = [course_row(i) for i in range(1, 1001)]
    for number in range(10, 1001, 10):  # 10 % of the rows are invalid
        rows[number - 1]["grade"] = "Z"
        if number % 20 == 0:
            rows[number - 1]["units"] = "25"
    path = write_csv(tmp_path / "courses.csv", rows)

    with pytest.raises(UploadRejected) as error:
        load(engine, college.code, path)

    rejected = error.value
    grade_rule = "not an agreed code (allowed: A, B, C, D, F, P, NP, W)"
    assert rejected.problems.counts == {("grade", grade_rule): 100, ("units", "above the maximum 20"): 50}
    assert rejected.problems.total == 150
    report = rejected.report().splitlines()
    assert report[0] == f"{path}: 150 invalid values in a file of 1,000 rows; nothing was loaded. " + (
        "Fix the file and upload it again."
    )
    assert report[1:4] == [
        "By column and rule:",
        f"        100  grade: {grade_rule}",
        "         50  units: above the maximum 20",
    ]
    assert report[4] == "First 100 of 150 (rows count data lines, header excluded):"
    listed = report[5:]
    assert len(listed) == 100
    # Every 20 rows: row 10 (grade), row 20 (units, grade); 33 such blocks make 99 problems.
    assert listed[:3] == [
        f"  row 10, column grade, value 'Z': {grade_rule}",
        "  row 20, column units, value '25': above the maximum 20",
        f"  row 20, column grade, value 'Z': {grade_rule}",
    ]
    assert listed[-1] == f"  row 670, column grade, value 'Z': {grade_rule}"
    assert [int(line.split(",")[0].split()[1]) for line in listed] == sorted(
        int(line.split(",")[0].split()[1]) for line in listed
    )
    assert counts(engine)["cc_courses"] == 0 and counts(engine)["batches"] == 0


def test_report_clips_long_values(engine, college, tmp_path):
    rows = [course_row(i) for i in range(5)]
    rows[2]["subject"] = "X" * 10_000_000
    with pytest.raises(UploadRejected) as error:
        load(engine, college.code, write_csv(tmp_path / "courses.csv", rows))
    report = error.value.report()
    assert len(report) < 2_000
    assert f"row 3, column subject, value '{'X' * 57}... (10,000,000 characters)'" in report
    assert {rule for _, rule in error.value.problems.counts} == {
        "does not match the pattern [A-Z]{2,5}",
        "longer than 200 characters",
    }


HIDDEN = [
    pytest.param("ssid", "12345abcde", "does not match the pattern [0-9]{10}", id="ssid-pattern"),
    pytest.param("ssid", "9" * 300, "longer than 200 characters", id="ssid-too-long"),
    pytest.param("birth_date", "2006-02-30", "not a date written YYYY-MM-DD", id="impossible-birth-date"),
    pytest.param("birth_date", "17/02/2006", "not a date written YYYY-MM-DD", id="birth-date-format"),
    pytest.param("last_name", "Oxenbridge" * 30, "longer than 200 characters", id="long-last-name"),
    pytest.param("local_id", "L" + "7" * 250, "longer than 200 characters", id="long-local-id"),
]


@pytest.mark.parametrize(("column", "value", "rule"), HIDDEN)
def test_identifier_values_are_never_echoed(engine, district, tmp_path, column, value, rule):
    rows = [k12_row(i) for i in range(10)]
    rows[6][column] = value
    path = write_csv(tmp_path / "k12.csv", rows)

    with pytest.raises(UploadRejected) as error:
        load(engine, district.code, path, table="k12_enrollment", year="2023-24")

    report = error.value.report()
    assert f"row 7, column {column}, value '(identifier hidden)': {rule}" in report
    assert value not in report and value[:12] not in report
    assert counts(engine)["batches"] == 0


@pytest.mark.parametrize("value", ["123-45-6789", "MA 123456789"], ids=["dashed", "in-text"])
def test_a_social_security_number_in_a_text_element_is_refused_and_not_echoed(engine, college, tmp_path, value):
    rows = [course_row(i) for i in range(10)]
    rows[3]["subject"] = value
    with pytest.raises(UploadRejected) as error:
        load(engine, college.code, write_csv(tmp_path / "courses.csv", rows))
    report = error.value.report()
    assert "row 4, column subject, value '(identifier hidden)': looks like a social security number" in report
    assert value not in report and "123" not in report.split("By column")[1]
    assert counts(engine)["batches"] == 0


def test_progress_follows_the_file_to_its_end(engine, college, tmp_path, monkeypatch):
    monkeypatch.setattr(upload_module, "CHUNK_ROWS", 100)
    path = write_csv(tmp_path / "courses.csv", [course_row(i) for i in range(450)])
    seen = []
    upload(
        engine,
        institution=college.code,
        year="2024-25",
        table="cc_courses",
        path=path,
        keyer=KEYER,
        loaded_by="t",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert len(seen) == 5 and {total for _, total in seen} == {path.stat().st_size}
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1][0] == path.stat().st_size


def test_blank_required_identifier_is_reported_as_blank(engine, district, tmp_path):
    rows = [k12_row(i) for i in range(10)]
    rows[3]["first_name"] = ""
    with pytest.raises(UploadRejected) as error:
        load(engine, district.code, write_csv(tmp_path / "k12.csv", rows), table="k12_enrollment", year="2023-24")
    assert "row 4, column first_name, value '': required, but blank" in error.value.report()


# ---- Parquet -------------------------------------------------------------------------------


def test_parquet_loads_the_same_rows_as_csv(engine, district, tmp_path):
    rows = [k12_row(i) for i in range(60)]
    other = add_institution(engine, "Bahia Serena Unified School District", "k12")
    csv_result = load(
        engine, district.code, write_csv(tmp_path / "k12.csv", rows), table="k12_enrollment", year="2023-24"
    )
    frame = pd.DataFrame(rows)
    for name in ("english_learner", "socioecon_disadvantaged", "disability", "ag_complete", "graduated"):
        frame[name] = frame[name].map({"Y": True, "N": False, "": None})  # optional ones keep nulls
    frame["grade_level"] = frame["grade_level"].astype(int)
    assert frame["english_learner"].dtype == bool and frame["ag_complete"].isna().any()
    frame.to_parquet(tmp_path / "k12.parquet", index=False)

    parquet_result = load(engine, other.code, tmp_path / "k12.parquet", table="k12_enrollment", year="2023-24")

    assert (csv_result.rows, parquet_result.rows, parquet_result.status) == (60, 60, "loaded")
    stored = read_table(engine, "k12_enrollment").drop(columns="institution")
    by_institution = read_table(engine, "k12_enrollment")["institution"]
    from_csv = stored[by_institution.eq(district.code)].sort_values("student_key").reset_index(drop=True)
    from_parquet = stored[by_institution.eq(other.code)].sort_values("student_key").reset_index(drop=True)
    pd.testing.assert_frame_equal(from_csv, from_parquet)


def test_parquet_with_missing_column_is_refused(engine, college, tmp_path):
    pd.DataFrame([course_row(i) for i in range(5)]).drop(columns="grade").to_parquet(tmp_path / "c.parquet")
    with pytest.raises(UploadRejected, match="missing column\\(s\\) grade"):
        load(engine, college.code, tmp_path / "c.parquet")
    assert counts(engine)["batches"] == 0


# ---- a load killed half-way ----------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    import warehouse.upload as upload_module
    from warehouse.db import connect
    from warehouse.pseudonymize import StudentKeyer

    upload_module.CHUNK_ROWS = 5_000
    insert, calls = upload_module._insert, []

    def slow_insert(conn, target, frame):
        insert(conn, target, frame)
        calls.append(len(frame))
        if len(calls) == 3:
            print("inside the transaction", len(calls), sum(calls), flush=True)
            time.sleep(600)

    upload_module._insert = slow_insert
    upload_module.upload(
        connect(), institution=sys.argv[1], year="2024-25", table="cc_courses",
        path=Path(sys.argv[2]), keyer=StudentKeyer(sys.argv[3].encode()), loaded_by="child",
    )
    print("finished", flush=True)
    """
)


def write_large_courses(path: Path, rows: int) -> Path:
    i = np.arange(rows)
    frame = pd.DataFrame(
        {
            "ssid": (5_000_000_000 + i).astype(str),
            "local_id": np.char.add("A", (10_000_000 + i).astype(str)),
            "first_name": np.array(FIRST_NAMES)[i % 5],
            "last_name": np.array(LAST_NAMES)[i % 5],
            "birth_date": "2005-03-04",
            "term": np.array(["2024FA", "2025SP"])[i % 2],
            "subject": "MATH",
            "course_number": "1A",
            "transfer_level": "Y",
            "math_english": "M",
            "units": "3",
            "grade": np.array(["A", "B", "C"])[i % 3],
        }
    )
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


def read_line(stream, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = wait_readable([stream], [], [], 0.2)
        if ready:
            return stream.readline()
    return ""


def test_killed_load_leaves_nothing_visible(engine, college, tmp_path, isolated_state):
    path = write_large_courses(tmp_path / "courses.csv", 60_000)
    before = counts(engine)
    engine.dispose()

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, college.code, str(path), SECRET.decode()],
        cwd=REPO,
        env=dict(os.environ, ENCLAVE_VAR=str(isolated_state), PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        marker = read_line(child.stdout, timeout=60)  # printed after 3 chunks, before the commit
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        _, errors = child.communicate(timeout=30)
    assert marker.startswith("inside the transaction 3 15000"), (marker, errors)
    assert child.returncode == -signal.SIGKILL

    engine = connect()
    assert counts(engine) == before
    assert read_table(engine, "cc_courses").empty

    result = load(engine, college.code, path)
    assert (result.status, result.rows) == ("loaded", 60_000)
    assert counts(engine)["cc_courses"] == 60_000 and counts(engine)["batches"] == 1
