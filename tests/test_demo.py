"""Tests for warehouse.demo and ``enclave demo build``: the demo consortium spans the three
segments, keeps names out of the data tables, has real small cells and linked students, does
not depend on the student-key secret for its counts, and is reused when built again."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import String, func, select

from hub.accounts import AccountStore
from hub.cli import enclave
from tests.conftest import DEMO_SEED, DEMO_STUDENTS
from warehouse import extracts
from warehouse.adoption import current_adoption
from warehouse.db import connect
from warehouse.demo import build_demo, read_manifest
from warehouse.elements import available_years, load_element_set
from warehouse.institutions import SEGMENTS, list_institutions
from warehouse.linkage import linkage_rates
from warehouse.pseudonymize import StudentKeyer, normalize_name
from warehouse.read import read_table
from warehouse.schema import DATA_TABLES, batches, institution_names, institutions, metadata
from warehouse.uses import element_choices, get_use

TWIN_STUDENTS = 300
TWIN_SEED = 11


@pytest.fixture
def demo(use_demo):
    engine = connect(readonly=True)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def twins(tmp_path_factory) -> dict[str, object]:
    """Two small demos from the same seed, keyed under different secrets."""
    engines = {}
    for label in ("a", "b"):
        root = tmp_path_factory.mktemp(f"twin-{label}")
        with pytest.MonkeyPatch.context() as patch:  # build_demo writes its manifest under ENCLAVE_VAR
            patch.setenv("ENCLAVE_VAR", str(root / "var"))
            engine = connect()
            build_demo(engine, StudentKeyer(f"secret {label}".encode()), students=TWIN_STUDENTS, seed=TWIN_SEED)
        engines[label] = engine
    yield engines
    for engine in engines.values():
        engine.dispose()


def test_demo_has_institutions_of_every_segment(demo):
    members = list_institutions(demo, with_names=True)
    assert len(members) >= 12
    by_segment = {segment: [m for m in members if m.segment == segment] for segment in SEGMENTS}
    assert all(len(found) >= 2 for found in by_segment.values()), {s: len(f) for s, f in by_segment.items()}
    manifest = read_manifest()
    assert (manifest.students, manifest.seed) == (DEMO_STUDENTS, DEMO_SEED)
    assert {(m.code, m.name, m.segment) for m in manifest.members} == {(m.code, m.name, m.segment) for m in members}


@pytest.mark.parametrize(
    ("table", "segment"),
    [
        ("k12_enrollment", "k12"),
        ("cc_students", "cc"),
        ("cc_courses", "cc"),
        ("cc_awards", "cc"),
        ("univ_students", "univ"),
    ],
)
def test_every_table_is_loaded_by_institutions_of_its_segment(demo, table, segment):
    data = DATA_TABLES[table]
    with demo.connect() as conn:
        found = set(
            conn.execute(
                select(institutions.c.segment).join(data, data.c.institution == institutions.c.code).distinct()
            ).scalars()
        )
        rows = conn.scalar(select(func.count()).select_from(data))
    assert found == {segment}
    assert rows == read_manifest().rows[table]


def test_institution_names_appear_only_in_institution_names(demo):
    with demo.connect() as conn:
        names = set(conn.execute(select(institution_names.c.name)).scalars())
        assert len(names) >= 12
        leaks = []
        for table in metadata.sorted_tables:
            if table is institution_names:
                continue
            for column in table.columns:
                if not isinstance(column.type, String):
                    continue
                for value in conn.execute(select(column).distinct()).scalars():
                    leaks += [(table.name, column.name, value) for name in names if value and name in value]
    assert leaks == []


@pytest.mark.parametrize("table", ["k12_enrollment", "cc_students"])
def test_small_cells_occur_naturally(demo, table):
    data = DATA_TABLES[table]
    with demo.connect() as conn:
        cells = conn.execute(
            select(data.c.institution, data.c.ethnicity, func.count()).group_by(data.c.institution, data.c.ethnicity)
        ).all()
    small = [cell for cell in cells if 1 <= cell[2] <= 9]
    assert small, f"no institution x ethnicity count of {table} between 1 and 9"
    assert any(cell[2] >= 100 for cell in cells)  # ... next to large ones


def test_students_link_across_segments(demo):
    k12 = set(read_table(demo, "k12_enrollment", ["student_key"])["student_key"])
    college = set(read_table(demo, "cc_students", ["student_key"])["student_key"])
    university = set(read_table(demo, "univ_students", ["student_key"])["student_key"])
    assert len(college & k12) / len(college) > 0.6
    assert len(university & k12) / len(university) > 0.3
    assert college & university  # transfers


def test_batches_record_every_upload_once(demo):
    with demo.connect() as conn:
        history = conn.execute(select(batches)).all()
    assert history and all(b.replaced_by is None and b.loaded_by == "demo" for b in history)
    scopes = [(b.institution, b.year, b.table_name) for b in history]
    assert len(scopes) == len(set(scopes))
    assert sum(b.rows for b in history) == sum(read_manifest().rows.values())


def aggregates(engine) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(table, segment, year) -> (rows, distinct student keys)."""
    found = {}
    with engine.connect() as conn:
        for name, data in DATA_TABLES.items():
            query = (
                select(institutions.c.segment, data.c.year, func.count(), func.count(data.c.student_key.distinct()))
                .join(institutions, institutions.c.code == data.c.institution)
                .group_by(institutions.c.segment, data.c.year)
            )
            for segment, year, rows, students in conn.execute(query):
                found[(name, segment, year)] = (rows, students)
    return found


def keys(engine, table: str) -> set[str]:
    return set(read_table(engine, table, ["student_key"])["student_key"])


def test_same_seed_different_secret_gives_same_counts_and_different_keys(twins):
    a, b = twins["a"], twins["b"]
    counts_a = aggregates(a)
    assert {table for table, _, _ in counts_a} == set(DATA_TABLES)
    assert counts_a == aggregates(b)
    for table in DATA_TABLES:
        assert keys(a, table).isdisjoint(keys(b, table)), table
    # The linkage does not depend on the secret either.
    linked = [len(keys(e, "cc_students") & keys(e, "k12_enrollment")) for e in (a, b)]
    assert linked[0] == linked[1] > 0


def test_same_seed_different_secret_gives_the_same_names(twins):
    names = [set(i.name for i in list_institutions(engine, with_names=True)) for engine in twins.values()]
    assert names[0] == names[1]
    codes = [set(i.code for i in list_institutions(engine)) for engine in twins.values()]
    assert codes[0] != codes[1]  # codes are drawn afresh, not derived from the names


def digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def demo_copy(demo_var, isolated_state) -> Path:
    """A private copy of the session demo, at ENCLAVE_VAR."""
    shutil.copytree(demo_var, isolated_state)
    return isolated_state


def run(*arguments: str):
    return CliRunner().invoke(enclave, ["demo", "build", *arguments])


def test_building_the_demo_again_reuses_it(demo_copy):
    before = digest(demo_copy)
    assert "warehouse.db" in before and "demo/manifest.json" in before

    result = run("--students", str(DEMO_STUDENTS), "--seed", str(DEMO_SEED))

    assert result.exit_code == 0, result.output
    assert "already built" in result.output and "reusing it" in result.output
    assert "Loaded" not in result.output and "password" not in result.output
    assert digest(demo_copy) == before


@pytest.mark.parametrize(
    "arguments",
    [["--seed", str(DEMO_SEED + 1)], ["--students", str(DEMO_STUDENTS + 100)], ["--seed", "0", "--students", "100"]],
    ids=["other-seed", "other-size", "defaults-differ"],
)
def test_building_another_demo_without_rebuild_is_an_error(demo_copy, arguments):
    before = digest(demo_copy)
    if "--students" not in arguments:
        arguments = [*arguments, "--students", str(DEMO_STUDENTS)]

    result = run(*arguments)

    assert result.exit_code != 0
    assert "--rebuild" in result.output
    assert f"--students {DEMO_STUDENTS} --seed {DEMO_SEED}" in result.output
    assert digest(demo_copy) == before


# ---- built through the warehouse path: adoption, uses, extracts, linkage ---------------------


def test_the_demo_adopted_every_shipped_element_set(demo):
    for year in available_years():
        adoption = current_adoption(demo, year)
        assert adoption is not None and adoption.adopted_by == "demo", year
        assert adoption.checksum == load_element_set(year).checksum


def test_the_demo_use_holds_everything_for_the_demo_researcher_and_author(demo):
    use = get_use(demo, "demo-consortium")
    assert use.users == ("demo-author", "demo-researcher")
    assert list(use.tables) == list(DATA_TABLES)
    assert all(columns[2:] == element_choices(t) for t, columns in use.tables.items())
    assert set(use.institutions) == {m.code for m in read_manifest().members}
    manifest = extracts.read_manifest("demo-consortium")
    assert manifest.users == use.users and manifest.rows == read_manifest().rows


def test_each_demo_account_of_an_institution_sees_its_own_data(demo):
    for account in AccountStore().list():
        if account.institution:
            own = extracts.read_manifest(f"own-{account.institution}")
            assert account.name in own.users, account


def test_the_demo_records_its_cross_segment_linkage(demo):
    recorded = read_manifest().linkage
    assert recorded == linkage_rates(demo)
    assert 0.6 < recorded["cc_from_k12"]["rate"] < 0.9
    assert 0.3 < recorded["univ_from_k12"]["rate"] < 0.8
    assert recorded["univ_from_cc"]["linked"] > 0
    assert all(link["linked"] <= link["students"] for link in recorded.values())


def test_the_linkage_matches_the_raw_identifiers(tmp_path, monkeypatch):
    """The keyed linkage finds exactly the students the raw files share (by SSID, else by
    normalized name and birth date): no false links, none missed."""
    monkeypatch.setenv("ENCLAVE_VAR", str(tmp_path / "var"))
    raw = tmp_path / "raw"
    engine = connect()
    manifest = build_demo(engine, StudentKeyer(b"linkage"), students=TWIN_STUDENTS, seed=TWIN_SEED, raw_dir=raw)

    def people(table: str) -> set[str]:
        frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in raw.rglob(f"{table}_*.csv")]
        frame = pd.concat(frames)
        by_name = "pii:" + frame.last_name.map(normalize_name) + "|" + frame.first_name.map(normalize_name)
        return set(("ssid:" + frame.ssid).where(frame.ssid != "", by_name + "|" + frame.birth_date))

    k12, college = people("k12_enrollment"), people("cc_students")
    expected = len(college & k12) / len(college)
    assert manifest.linkage["cc_from_k12"]["rate"] == round(expected, 4)
    engine.dispose()


def test_the_demo_builds_the_same_on_postgresql(twins, postgres_server, tmp_path):
    """`enclave demo build` on PostgreSQL gives the SQLite twin's counts."""
    url = postgres_server.create_database(empty=True)
    env = dict(os.environ, ENCLAVE_VAR=str(tmp_path / "var"), ENCLAVE_DATABASE_URL=url)
    arguments = ["demo", "build", "--students", str(TWIN_STUDENTS), "--seed", str(TWIN_SEED)]
    done = subprocess.run([sys.executable, "-m", "hub.cli", *arguments], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    engine = connect(url)
    try:
        assert aggregates(engine) == aggregates(twins["a"])
        assert (tmp_path / "var" / "uses" / "demo-consortium" / "manifest.json").exists()
    finally:
        engine.dispose()
        postgres_server.drop_database(url)
