"""Tests for warehouse.withdraw (principle 2), on SQLite and PostgreSQL: an institution's rows
leave the warehouse (all years, or one) in one transaction, its batches are marked and kept;
other institutions are untouched; the extracts follow; the data can be uploaded again."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from tests.test_upload import KEYER, counts, course_row, write_csv
from warehouse import extracts
from warehouse.exceptions import UnknownInstitution, WarehouseError
from warehouse.institutions import add_institution
from warehouse.read import read_table
from warehouse.schema import batches
from warehouse.upload import batch_history, upload
from warehouse.uses import add_use, refresh_extracts
from warehouse.withdraw import held_rows, withdraw


@pytest.fixture
def engine(adopted_warehouse):
    return adopted_warehouse


@pytest.fixture
def loaded(engine, tmp_path) -> dict[str, str]:
    """Two colleges: cc1 with 2023-24 and 2024-25 courses, cc2 with 2024-25; a use of both."""
    codes = {label: add_institution(engine, f"College {label}", "cc").code for label in ("cc1", "cc2")}
    files = [
        ("cc1", "2024-25", [course_row(i) for i in range(30)]),
        ("cc1", "2023-24", [course_row(i, term="2024SP") for i in range(12)]),
        ("cc2", "2024-25", [course_row(i + 500) for i in range(20)]),
    ]
    for number, (label, year, rows) in enumerate(files):
        path = write_csv(tmp_path / f"file{number}.csv", rows)
        upload(engine, institution=codes[label], year=year, table="cc_courses", path=path, keyer=KEYER, loaded_by="t")
    add_use(
        engine, "colleges", purpose="Study", tables=["cc_courses"], elements=None, institutions=None, created_by="a"
    )
    refresh_extracts(engine, {})
    return codes


def test_withdrawing_everything_removes_the_rows_and_keeps_the_batches_marked(engine, loaded):
    assert held_rows(engine, loaded["cc1"]) == {"cc_courses": 42}
    result = withdraw(engine, loaded["cc1"], "registrar")

    assert (result.institution, result.year, result.rows, result.total) == (loaded["cc1"], None, {"cc_courses": 42}, 42)
    assert len(result.batches) == 2
    frame = read_table(engine, "cc_courses")
    assert set(frame.institution) == {loaded["cc2"]} and len(frame) == 20
    with engine.connect() as conn:
        marked = conn.execute(select(batches).where(batches.c.id.in_(result.batches))).all()
    assert all(b.withdrawn_by == "registrar" and b.withdrawn_at is not None for b in marked)
    statuses = [status for batch, status in batch_history(engine, loaded["cc1"])]
    assert all(s.startswith("withdrawn ") and s.endswith(" by registrar") for s in statuses)
    assert held_rows(engine, loaded["cc1"]) == {}


def test_withdrawing_one_year_keeps_the_others(engine, loaded):
    result = withdraw(engine, loaded["cc1"], "registrar", year="2023-24")
    assert result.rows == {"cc_courses": 12} and len(result.batches) == 1
    frame = read_table(engine, "cc_courses")
    assert frame[frame.institution == loaded["cc1"]].year.unique().tolist() == ["2024-25"]


def test_the_extracts_follow_the_withdrawal(engine, loaded):
    withdraw(engine, loaded["cc1"], "registrar")
    touched = refresh_extracts(engine, {}, institutions=[loaded["cc1"]])
    assert sorted(touched) == sorted(["colleges", f"own-{loaded['cc1']}"])
    frame = pd.read_parquet(extracts.read_manifest("colleges").file("cc_courses"))
    assert set(frame.institution) == {loaded["cc2"]}
    assert f"own-{loaded['cc1']}" not in extracts.extract_names()


def test_withdrawn_data_can_be_uploaded_again(engine, loaded, tmp_path):
    withdraw(engine, loaded["cc1"], "registrar", year="2024-25")
    path = write_csv(tmp_path / "file0.csv", [course_row(i) for i in range(30)])  # the same file as before
    result = upload(
        engine, institution=loaded["cc1"], year="2024-25", table="cc_courses", path=path, keyer=KEYER, loaded_by="t"
    )
    assert (result.status, result.rows, result.replaced_batch) == ("loaded", 30, None)


@pytest.mark.parametrize(
    ("institution", "year", "error", "message"),
    [
        ("ZZZZZZ", None, UnknownInstitution, "no institution has the code 'ZZZZZZ'"),
        ("cc2", "2023-24", WarehouseError, "has no data in the warehouse for 2023-24; nothing to withdraw"),
        ("cc1", "2023", WarehouseError, "not an academic year"),
    ],
    ids=["unknown-institution", "year-without-data", "malformed-year"],
)
def test_withdrawals_that_cannot_happen_change_nothing(engine, loaded, institution, year, error, message):
    before = counts(engine)
    with pytest.raises(error, match=message):
        withdraw(engine, loaded.get(institution, institution), "registrar", year=year)
    assert counts(engine) == before
    assert all(status == "current" for _, status in batch_history(engine))
