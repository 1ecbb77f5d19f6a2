"""Tests for warehouse.uses and warehouse.extracts, on SQLite and PostgreSQL: what a use may
be made of; each extract holds exactly its elements of its institutions' rows, typed as in
the warehouse; own-institution uses follow the accounts; refreshes are atomic, reuse unchanged
tables, and leave the old extract in place when they fail; the layout and file modes."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest

import warehouse.extracts as extracts_module
from tests.conftest import copy_warehouse, new_warehouse
from tests.test_upload import KEYER, course_row, k12_row, write_csv
from warehouse import extracts
from warehouse.adoption import adopt_all
from warehouse.db import connect
from warehouse.exceptions import UnknownInstitution
from warehouse.institutions import add_institution
from warehouse.read import read_table
from warehouse.upload import upload
from warehouse.uses import (
    UnknownUse,
    UseError,
    add_use,
    can_revoke,
    element_choices,
    extract_specs,
    get_use,
    grant,
    list_uses,
    refresh_extracts,
    remove_use,
    resolve_elements,
    revoke,
)
from warehouse.withdraw import withdraw


def load(engine, code: str, year: str, table: str, path) -> None:
    upload(engine, institution=code, year=year, table=table, path=path, keyer=KEYER, loaded_by="t")


@pytest.fixture(scope="module")
def template(backend, request, tmp_path_factory) -> tuple[str, dict[str, str]]:
    """A warehouse built once per database: two colleges and a district, each with a file
    loaded, every element set adopted. Tests get copies (``engine``)."""
    directory = tmp_path_factory.mktemp("uses-template")
    url = new_warehouse(request, backend, directory)
    engine = connect(url)
    adopt_all(engine, "tests")
    codes = {
        "cc1": add_institution(engine, "Sierra Alta College", "cc").code,
        "cc2": add_institution(engine, "Costa Clara College", "cc").code,
        "k12": add_institution(engine, "Valle Verde Unified", "k12").code,
    }
    for label, rows in (("cc1", 30), ("cc2", 20)):
        path = write_csv(directory / f"{label}.csv", [course_row(i + 100 * len(label) + rows) for i in range(rows)])
        upload(
            engine, institution=codes[label], year="2024-25", table="cc_courses", path=path, keyer=KEYER, loaded_by="t"
        )
    path = write_csv(directory / "k12.csv", [k12_row(i) for i in range(25)])
    upload(
        engine, institution=codes["k12"], year="2023-24", table="k12_enrollment", path=path, keyer=KEYER, loaded_by="t"
    )
    engine.dispose()
    return url, codes


@pytest.fixture
def engine(template, request, isolated_state, monkeypatch):
    copy_warehouse(request, template[0], isolated_state, monkeypatch)
    engine = connect()
    yield engine
    engine.dispose()


@pytest.fixture
def members(template, engine) -> dict[str, str]:
    """Segment-ish label -> code of the template's institutions."""
    return template[1]


def add(engine, name="course-success", tables=("cc_courses",), elements=None, institutions=None, purpose="Study"):
    return add_use(
        engine,
        name,
        purpose=purpose,
        tables=list(tables),
        elements=None if elements is None else list(elements),
        institutions=None if institutions is None else list(institutions),
        created_by="admin",
    )


# ---- what a use is made of ---------------------------------------------------------------


def test_a_use_records_its_tables_elements_institutions_and_purpose(engine, members):
    use = add(engine, elements=["grade", "term", "student_key"], institutions=[members["cc1"]])
    assert use.name == "course-success" and use.purpose == "Study" and use.created_by == "admin"
    assert use.tables == {"cc_courses": ("institution", "year", "student_key", "term", "grade")}
    assert use.institutions == (members["cc1"],)
    assert use.users == ()
    assert list_uses(engine) == [use]


def test_all_elements_and_all_institutions_are_todays(engine, members):
    use = add(engine, tables=["cc_courses", "k12_enrollment"])
    assert use.tables["cc_courses"] == ("institution", "year", *element_choices("cc_courses"))
    assert use.tables["k12_enrollment"][:3] == ("institution", "year", "student_key")
    assert set(use.institutions) == set(members.values())
    add_institution(engine, "Later Member College", "cc")
    assert set(get_use(engine, use.name).institutions) == set(members.values())


@pytest.mark.parametrize(
    ("tables", "elements", "expected"),
    [
        (
            ["cc_courses", "cc_students"],
            ["cc_courses.grade", "student_key"],
            {"cc_courses": ["student_key", "grade"], "cc_students": ["student_key"]},
        ),
        (
            ["cc_courses", "cc_students"],
            ["ethnicity", "grade"],
            {"cc_courses": ["grade"], "cc_students": ["ethnicity"]},
        ),
    ],
    ids=["qualified-and-shared", "each-to-its-table"],
)
def test_element_names_apply_to_the_tables_that_have_them(tables, elements, expected):
    granted = resolve_elements(tables, elements)
    assert {t: list(c[2:]) for t, c in granted.items()} == expected
    assert all(c[:2] == ("institution", "year") for c in granted.values())


BAD_USES = [
    pytest.param({"name": "Course Success"}, UseError, "use name 'Course Success' must be", id="bad-name"),
    pytest.param({"name": "own-ABC234"}, UseError, "not start with 'own-'", id="own-prefix"),
    pytest.param({"purpose": "  "}, UseError, "give --purpose TEXT", id="no-purpose"),
    pytest.param({"tables": ["cc_grades"]}, UseError, "unknown table(s) 'cc_grades'", id="unknown-table"),
    pytest.param({"tables": []}, UseError, "at least one table", id="no-table"),
    pytest.param(
        {"elements": ["shoe_size"]}, UseError, "no table of the use has the element 'shoe_size'", id="unknown-element"
    ),
    pytest.param({"elements": ["ssid"]}, UseError, "no table of the use has the element 'ssid'", id="raw-identifier"),
    pytest.param(
        {"elements": ["k12_enrollment.school"]}, UseError, "not among the use's tables", id="element-of-other-table"
    ),
    pytest.param(
        {"tables": ["cc_courses", "cc_students"], "elements": ["grade"]},
        UseError,
        "none of the chosen elements belongs to cc_students",
        id="table-without-elements",
    ),
    pytest.param({"institutions": ["ZZZZZZ"]}, UnknownInstitution, "'ZZZZZZ'", id="unknown-institution"),
    pytest.param({"institutions": []}, UseError, "at least one institution", id="no-institution"),
]


@pytest.mark.parametrize(("changes", "error", "message"), BAD_USES)
def test_a_use_that_cannot_be_added_is_refused_and_not_recorded(engine, members, changes, error, message):
    arguments = {"name": "course-success", "tables": ["cc_courses"], "elements": None, "institutions": None} | changes
    with pytest.raises(error) as raised:
        add(engine, **arguments)
    assert message in str(raised.value)
    assert list_uses(engine) == []


def test_use_names_are_unique(engine, members):
    add(engine)
    with pytest.raises(UseError, match="already exists"):
        add(engine)


# ---- grants ------------------------------------------------------------------------------


def test_grant_and_revoke_keep_the_history(engine, members):
    add(engine)
    assert grant(engine, "course-success", "alice", "admin") is True
    assert grant(engine, "course-success", "alice", "admin") is False
    grant(engine, "course-success", "bob", "admin")
    assert get_use(engine, "course-success").users == ("alice", "bob")
    assert can_revoke(get_use(engine, "course-success"), "alice")
    revoke(engine, "course-success", "alice", "admin")
    assert get_use(engine, "course-success").users == ("bob",)
    assert not can_revoke(get_use(engine, "course-success"), "alice")
    with pytest.raises(UseError, match="alice has no grant of use course-success; it is granted to: bob"):
        revoke(engine, "course-success", "alice", "admin")
    grant(engine, "course-success", "alice", "admin")  # granted again after a revocation
    assert get_use(engine, "course-success").users == ("alice", "bob")


def test_unknown_use(engine, members):
    add(engine)
    with pytest.raises(UnknownUse, match="no use named 'nope'; uses: course-success"):
        grant(engine, "nope", "alice", "admin")
    with pytest.raises(UnknownUse, match="institution's own data"):
        grant(engine, f"own-{members['cc1']}", "alice", "admin")


def test_a_removed_use_ends_its_grants_and_its_extract(engine, members):
    add(engine)
    grant(engine, "course-success", "alice", "admin")
    refresh_extracts(engine, {})
    assert "course-success" in extracts.extract_names()
    remove_use(engine, "course-success", "admin")
    touched = refresh_extracts(engine, {})
    assert "course-success" in touched
    assert "course-success" not in extracts.extract_names()
    assert not list((extracts.uses_root()).glob(".course-success.*"))
    assert list_uses(engine) == []
    with pytest.raises(UseError, match="already exists"):  # the record stays
        add(engine)


# ---- extracts ----------------------------------------------------------------------------


def parquet(name: str, table: str) -> pd.DataFrame:
    return pd.read_parquet(extracts.read_manifest(name).file(table))


def test_the_extract_holds_only_its_elements_and_institutions_typed_as_the_warehouse(engine, members):
    add(
        engine,
        tables=["cc_courses", "k12_enrollment"],
        elements=["grade", "units", "ethnicity"],
        institutions=[members["cc1"], members["k12"]],
    )
    grant(engine, "course-success", "alice", "admin")
    refresh_extracts(engine, {})

    manifest = extracts.read_manifest("course-success")
    assert manifest.users == ("alice",) and manifest.kind == "approved"
    assert manifest.tables == {
        "cc_courses": ("institution", "year", "units", "grade"),
        "k12_enrollment": ("institution", "year", "ethnicity"),
    }
    for table, columns in manifest.tables.items():
        frame = parquet("course-success", table)
        truth = read_table(engine, table, list(columns))
        truth = truth[truth.institution.isin([members["cc1"], members["k12"]])].reset_index(drop=True)
        assert manifest.rows[table] == len(truth) > 0
        sort = list(columns)
        pd.testing.assert_frame_equal(
            frame.sort_values(sort).reset_index(drop=True), truth.sort_values(sort).reset_index(drop=True)
        )
    assert members["cc2"] not in set(parquet("course-success", "cc_courses").institution)


def test_own_uses_hold_all_of_an_institutions_rows_for_its_accounts(engine, members):
    specs = {s.name: s for s in extract_specs(engine, {members["cc1"]: ["carla", "cody"]})}
    own = specs[f"own-{members['cc1']}"]
    assert own.kind == "own" and own.users == ("carla", "cody")
    assert list(own.tables) == ["cc_courses"]
    assert own.tables["cc_courses"] == ("institution", "year", *element_choices("cc_courses"))
    assert specs[f"own-{members['cc2']}"].users == ()
    assert list(specs[f"own-{members['k12']}"].tables) == ["k12_enrollment"]
    refresh_extracts(engine, {members["cc1"]: ["carla", "cody"]})
    assert set(parquet(f"own-{members['cc1']}", "cc_courses").institution) == {members["cc1"]}


def test_refresh_rewrites_only_the_uses_of_the_changed_institution(engine, members, tmp_path):
    add(engine, name="colleges", institutions=[members["cc1"], members["cc2"]])
    add(engine, name="districts", tables=["k12_enrollment"], institutions=[members["k12"]])
    refresh_extracts(engine, {})
    before = {name: os.readlink(extracts.uses_root() / name) for name in extracts.extract_names()}
    path = write_csv(tmp_path / "more.csv", [course_row(i) for i in range(7)])
    upload(
        engine, institution=members["cc2"], year="2024-25", table="cc_courses", path=path, keyer=KEYER, loaded_by="t"
    )

    touched = refresh_extracts(engine, {}, institutions=[members["cc2"]], tables=["cc_courses"])

    assert sorted(touched) == sorted(["colleges", f"own-{members['cc2']}"])
    after = {name: os.readlink(extracts.uses_root() / name) for name in extracts.extract_names()}
    assert {n for n in after if after[n] != before[n]} == set(touched)
    assert extracts.read_manifest("colleges").rows["cc_courses"] == 30 + 7


def test_unchanged_tables_are_linked_not_rewritten(engine, members):
    add(engine, tables=["cc_courses", "k12_enrollment"])
    refresh_extracts(engine, {})
    old = extracts.read_manifest("course-success")
    refresh_extracts(engine, {}, names=["course-success"], tables=["k12_enrollment"])
    new = extracts.read_manifest("course-success")
    assert new.directory != old.directory and not old.directory.exists()
    assert new.file("cc_courses").stat().st_nlink == 1  # the old version's link is gone with it
    grant(engine, "course-success", "alice", "admin")
    before = new.file("cc_courses").stat().st_ino
    refresh_extracts(engine, {}, names=["course-success"], grants_only=True)
    granted = extracts.read_manifest("course-success")
    assert granted.users == ("alice",)
    assert granted.file("cc_courses").stat().st_ino == before  # the same file, hard-linked


def test_a_failing_refresh_leaves_the_old_extract_whole(engine, members, monkeypatch, tmp_path):
    add(engine, tables=["cc_courses", "k12_enrollment"])
    refresh_extracts(engine, {})
    old = extracts.read_manifest("course-success")
    old_rows = parquet("course-success", "cc_courses")
    path = write_csv(tmp_path / "more.csv", [course_row(i) for i in range(7)])
    upload(
        engine, institution=members["cc2"], year="2024-25", table="cc_courses", path=path, keyer=KEYER, loaded_by="t"
    )
    write = extracts_module._write_table

    def fail_on_second(engine, name, columns, institutions, target):
        if name == "k12_enrollment":
            raise OSError(28, "No space left on device")
        return write(engine, name, columns, institutions, target)

    monkeypatch.setattr(extracts_module, "_write_table", fail_on_second)
    with pytest.raises(OSError, match="No space left"):
        refresh_extracts(engine, {}, names=["course-success"])

    assert extracts.read_manifest("course-success") == old
    pd.testing.assert_frame_equal(parquet("course-success", "cc_courses"), old_rows)
    versions = [p.name for p in extracts.uses_root().glob(".course-success.*")]
    assert versions == [old.directory.name]  # the half-written version is gone


def test_layout_and_modes(engine, members):
    add(engine)
    refresh_extracts(engine, {})
    root = extracts.uses_root()
    link = root / "course-success"
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    assert link.is_symlink() and os.readlink(link).startswith(".course-success.")
    version = Path(os.path.realpath(link))
    assert stat.S_IMODE(version.stat().st_mode) == 0o750
    assert sorted(p.name for p in version.iterdir()) == ["cc_courses.parquet", "manifest.json"]
    for path in version.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
    document = json.loads((version / "manifest.json").read_text())
    assert document["format"] == 1 and document["use"] == "course-success"
    assert document["tables"]["cc_courses"]["file"] == "cc_courses.parquet"


def test_institutions_without_data_lose_their_own_extract(engine, members):
    refresh_extracts(engine, {})
    own = f"own-{members['cc2']}"
    assert own in extracts.extract_names()
    withdraw(engine, members["cc2"], "admin")
    touched = refresh_extracts(engine, {}, institutions=[members["cc2"]])
    assert own in touched and own not in extracts.extract_names()


def test_a_copy_of_var_without_its_symlinks_still_reads_and_refreshes(engine, members, tmp_path, monkeypatch):
    add(engine)
    refresh_extracts(engine, {})
    copy = tmp_path / "copied-var"
    shutil.copytree(extracts.uses_root().parent, copy)  # symlinks become directories
    monkeypatch.setenv("ENCLAVE_VAR", str(copy))
    assert not (copy / "uses" / "course-success").is_symlink()
    assert "course-success" in extracts.extract_names()
    assert extracts.read_manifest("course-success").rows == {"cc_courses": 50}

    grant(engine, "course-success", "alice", "admin")
    refresh_extracts(engine, {}, names=["course-success"], grants_only=True)

    assert (copy / "uses" / "course-success").is_symlink()
    assert extracts.read_manifest("course-success").users == ("alice",)
    assert len(list((copy / "uses").glob(".course-success.*"))) == 1
