"""Tests for warehouse.workspace and kernels.data: a kernel reads its user's uses only (never
the warehouse), combines several uses of one table without duplicating or half-filling rows,
names the use that has a column the combination lacks, and types every column as the
warehouse does; a real kernel honours ENCLAVE_USER, and the spawner sets it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import warehouse.workspace as workspace_module
from kernels import data
from kernels.marks import mark_of
from tests.kernel_client import KernelSession
from tests.test_spawner import make_spawner
from tests.test_upload import KEYER, course_row, k12_row, write_csv
from warehouse.adoption import adopt_all
from warehouse.db import connect, create_schema
from warehouse.exceptions import UnknownTable
from warehouse.institutions import add_institution
from warehouse.read import read_table
from warehouse.upload import upload
from warehouse.uses import add_use, grant, refresh_extracts


@pytest.fixture
def engine(isolated_state):
    engine = connect()
    create_schema(engine)
    adopt_all(engine, "tests")
    yield engine
    engine.dispose()


@pytest.fixture
def codes(engine, tmp_path) -> dict[str, str]:
    """Two colleges and a district with data; uses `narrow` (grade of both colleges, granted to
    alice) and `district` (all of k12_enrollment, granted to bob); alice works at college cc1."""
    codes = {
        "cc1": add_institution(engine, "Sierra Alta College", "cc").code,
        "cc2": add_institution(engine, "Costa Clara College", "cc").code,
        "k12": add_institution(engine, "Valle Verde Unified", "k12").code,
    }
    for label, offset, rows in (("cc1", 0, 30), ("cc2", 1000, 20)):
        path = write_csv(tmp_path / f"{label}.csv", [course_row(offset + i) for i in range(rows)])
        upload(
            engine, institution=codes[label], year="2024-25", table="cc_courses", path=path, keyer=KEYER, loaded_by="t"
        )
    path = write_csv(tmp_path / "k12.csv", [k12_row(i) for i in range(25)])
    upload(
        engine, institution=codes["k12"], year="2023-24", table="k12_enrollment", path=path, keyer=KEYER, loaded_by="t"
    )
    common = {"purpose": "Study", "created_by": "admin"}
    add_use(
        engine, "narrow", tables=["cc_courses"], elements=["grade"], institutions=[codes["cc1"], codes["cc2"]], **common
    )
    add_use(engine, "district", tables=["k12_enrollment"], elements=None, institutions=[codes["k12"]], **common)
    grant(engine, "narrow", "alice", "admin")
    grant(engine, "district", "bob", "admin")
    refresh_extracts(engine, {codes["cc1"]: ["alice"]})
    return codes


def as_user(monkeypatch, user: str | None) -> None:
    if user is None:
        monkeypatch.delenv("ENCLAVE_USER", raising=False)
    else:
        monkeypatch.setenv("ENCLAVE_USER", user)


def test_a_user_sees_the_uses_granted_to_them_and_their_own_institution(codes, monkeypatch):
    as_user(monkeypatch, "alice")
    assert data.uses() == {"narrow": ["cc_courses"], f"own-{codes['cc1']}": ["cc_courses"]}
    assert data.tables() == ["cc_courses"]
    as_user(monkeypatch, "bob")
    assert data.uses() == {"district": ["k12_enrollment"]}
    assert data.tables() == ["k12_enrollment"]
    as_user(monkeypatch, "mallory")
    assert data.uses() == {} and data.tables() == []
    with pytest.raises(UnknownTable, match="no table 'cc_courses' in your approved uses; your tables: none"):
        data.load("cc_courses")


def test_a_process_without_a_user_reads_every_extract_it_can(codes, monkeypatch):
    as_user(monkeypatch, None)
    assert set(data.uses()) == {"narrow", "district", *(f"own-{c}" for c in codes.values())}
    assert data.tables() == ["k12_enrollment", "cc_courses"]  # the order of the data flow


def test_extracts_the_process_cannot_read_are_not_offered(codes, monkeypatch):
    as_user(monkeypatch, "alice")
    monkeypatch.setattr(workspace_module, "_readable", lambda path: "narrow" not in str(path))
    assert list(data.uses()) == [f"own-{codes['cc1']}"]


def test_combined_table_has_each_institutions_rows_once_with_the_shared_columns(engine, codes, monkeypatch):
    as_user(monkeypatch, "alice")
    frame = data.load("cc_courses")
    truth = read_table(engine, "cc_courses", ["institution", "year", "grade"])
    assert list(frame.columns) == ["institution", "year", "grade"]  # what both uses grant
    assert frame.institution.value_counts().to_dict() == {codes["cc1"]: 30, codes["cc2"]: 20}
    sort = ["institution", "grade"]
    pd.testing.assert_frame_equal(
        frame.sort_values(sort).reset_index(drop=True), truth.sort_values(sort).reset_index(drop=True)
    )
    assert data.columns("cc_courses") == ["institution", "year", "grade"]


def test_a_column_only_some_uses_grant_names_the_use_that_has_it(codes, monkeypatch):
    as_user(monkeypatch, "alice")
    own = f"own-{codes['cc1']}"
    with pytest.raises(UnknownTable) as error:
        data.load("cc_courses", columns=["grade", "units"])
    assert f"load {own}/cc_courses" in str(error.value) and "'units'" in str(error.value)
    mine = data.load(f"{own}/cc_courses", columns=["grade", "units"])
    assert len(mine) == 30 and list(mine.columns) == ["grade", "units"]
    assert len(data.load("narrow/cc_courses")) == 50


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("cc_grades", "no table 'cc_grades' in your approved uses; your tables: cc_courses"),
        ("district/k12_enrollment", "you have no use named 'district'; your uses: narrow, own-"),
        ("narrow/cc_students", "use narrow has no table 'cc_students'; its tables: cc_courses"),
    ],
    ids=["unknown-table", "use-of-someone-else", "table-not-in-use"],
)
def test_names_the_user_cannot_load(codes, monkeypatch, name, message):
    as_user(monkeypatch, "alice")
    with pytest.raises(UnknownTable) as error:
        data.load(name)
    assert message in str(error.value)


def test_one_use_alone_keeps_its_columns_and_unknown_columns_are_named(codes, monkeypatch):
    as_user(monkeypatch, "bob")
    with pytest.raises(UnknownTable, match="k12_enrollment has no column\\(s\\) 'shoe_size'"):
        data.load("k12_enrollment", columns=["shoe_size"])


def test_frames_are_marked_record_level_with_the_name_asked_for(codes, monkeypatch):
    as_user(monkeypatch, "alice")
    mark = mark_of(data.load("cc_courses"))
    assert (mark["level"], mark["source"], mark["universe"]) == ("record", "cc_courses", "table:cc_courses")
    assert mark_of(data.load("narrow/cc_courses"))["source"] == "narrow/cc_courses"


def test_rows_keep_their_record_ids_in_every_load(codes, monkeypatch):
    """The same row has the same id whatever columns or uses it is loaded with (the filter links
    tables through them); ids are unique and name the extract file they come from."""
    as_user(monkeypatch, "alice")
    whole = data.load("cc_courses")
    narrow = data.load("cc_courses", columns=["grade"])
    by_use = data.load("narrow/cc_courses")
    assert whole.index.is_unique and whole.index.name == "record_id"
    assert whole.index.equals(narrow.index) and set(by_use.index) == set(whole.index)
    assert (whole.loc[by_use.index, "grade"].to_numpy() == by_use["grade"].to_numpy()).all()
    assert whole.index.min() >= 2**62  # never confused with a relabelled frame's 0, 1, 2...


def test_every_table_reads_back_with_the_warehouses_values_and_dtypes(use_demo, monkeypatch):
    as_user(monkeypatch, "demo-researcher")
    engine = connect(f"sqlite:///{use_demo / 'warehouse.db'}", readonly=True)
    assert data.tables() == ["k12_enrollment", "cc_students", "cc_courses", "cc_awards", "univ_students"]
    for table in data.tables():
        frame = data.load(table)
        truth = read_table(engine, table)
        assert list(frame.columns) == list(truth.columns)
        assert frame.dtypes.to_dict() == truth.dtypes.to_dict(), table
        key = list(truth.columns)
        pd.testing.assert_frame_equal(
            frame.sort_values(key).reset_index(drop=True), truth.sort_values(key).reset_index(drop=True)
        )
    engine.dispose()


def test_the_kernel_reads_extracts_and_never_the_warehouse(codes, monkeypatch, isolated_state):
    as_user(monkeypatch, "alice")
    (isolated_state / "warehouse.db").unlink()  # a kernel does not need it
    assert len(data.load("cc_courses")) == 50


def test_a_real_kernel_honours_enclave_user(demo_var, tmp_path):
    manifest = json.loads((demo_var / "demo" / "manifest.json").read_text())
    univ = next(m["code"] for m in manifest["members"] if m["segment"] == "univ")
    cc = next(m["code"] for m in manifest["members"] if m["segment"] == "cc")
    code = "import json\nfrom kernels import data\nprint(json.dumps(sorted(data.uses().items())))"
    for user, expected in (
        ("demo-reviewer", [(f"own-{univ}", ["univ_students"])]),
        ("demo-researcher", [("demo-consortium", None), (f"own-{cc}", ["cc_students", "cc_courses", "cc_awards"])]),
    ):
        session = KernelSession(env={"ENCLAVE_VAR": str(demo_var), "ENCLAVE_USER": user}, cwd=str(tmp_path))
        try:
            out = session.run(code)
        finally:
            session.close()
        assert not out.errors, out.errors
        shown = json.loads("".join(out.texts))  # [[use, tables], ...], printed in one or more parts
        assert [name for name, _ in shown] == [name for name, _ in expected], user
        for (_, tables), (_, wanted) in zip(shown, expected, strict=True):
            assert wanted is None or tables == wanted


def test_the_spawner_tells_the_kernel_its_user(isolated_state):
    assert make_spawner("alice").get_env()["ENCLAVE_USER"] == "alice"
    assert make_spawner("bob").get_env()["ENCLAVE_USER"] == "bob"


def test_an_extract_replaced_while_it_is_read_is_read_again(codes, monkeypatch):
    as_user(monkeypatch, "alice")
    real, calls = workspace_module.Workspace.load, []

    def replaced_once(self, name, columns=None):
        calls.append(name)
        if len(calls) == 1:
            raise FileNotFoundError("the old version was deleted by a refresh")
        return real(self, name, columns)

    monkeypatch.setattr(workspace_module.Workspace, "load", replaced_once)
    assert len(data.load("cc_courses")) == 50 and calls == ["cc_courses", "cc_courses"]
