"""Tests for warehouse.synthetic: the generated raw files follow the data-element contract,
are deterministic, link students across segments and contain real small cells."""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from warehouse.synthetic import Consortium, RawFile, generate

ELEMENTS_DIR = Path(__file__).resolve().parents[1] / "warehouse" / "elements"
BASE = tomllib.loads((ELEMENTS_DIR / "2019-20.toml").read_text(encoding="utf-8"))
SEGMENT_TABLES = {
    "k12": {"k12_enrollment"},
    "cc": {"cc_students", "cc_courses", "cc_awards"},
    "univ": {"univ_students"},
}
K12_YEARS = {"2019-20", "2020-21", "2021-22", "2022-23", "2023-24"}
COLLEGE_YEARS = {"2023-24", "2024-25", "2025-26"}
STUDENTS = 20_000


def term_year(term: str) -> str:
    """2024FA -> 2024-25; 2025SP and 2025SU -> 2024-25."""
    start = int(term[:4]) if term.endswith("FA") else int(term[:4]) - 1
    return f"{start}-{(start + 1) % 100:02d}"


def problems(frame: pd.DataFrame, table: str, year: str) -> list[str]:
    """Everything in ``frame`` (all values as text) that breaks the element file; [] if valid."""
    found = []
    for name, spec in BASE["tables"][table]["columns"].items():
        text = frame[name]
        blank = text.eq("")
        if spec.get("required") and blank.any():
            found.append(f"{name}: {blank.sum()} blank values in a required column")
        values = text[~blank]
        kind = spec["type"]
        if kind == "string":
            bad = ~values.str.fullmatch(spec["pattern"]) if "pattern" in spec else values.eq("")
        elif kind in ("integer", "number"):
            shape = r"-?\d+" if kind == "integer" else r"-?\d+(\.\d+)?"
            bad = ~values.str.fullmatch(shape)
            number = pd.to_numeric(values.where(~bad), errors="coerce")
            bad |= number.lt(spec.get("min", float("-inf"))) | number.gt(spec.get("max", float("inf")))
        elif kind == "boolean":
            bad = ~values.isin(["Y", "N"])
        elif kind == "date":
            parsed = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
            bad = ~values.str.fullmatch(r"\d{4}-\d{2}-\d{2}") | parsed.isna()
        elif kind == "code":
            codes = spec["codes"]
            bad = ~values.isin(BASE["codes"][codes] if isinstance(codes, str) else codes)
        elif kind == "term":
            bad = ~values.str.fullmatch(r"\d{4}(FA|SP|SU)")
            if spec.get("in_year"):
                wrong_year = [not good or term_year(t) != year for t, good in zip(values, ~bad, strict=True)]
                bad |= pd.Series(wrong_year, index=values.index, dtype=bool)
        else:
            raise AssertionError(f"unknown element type {kind}")
        if bad.any():
            found.append(f"{name}: {bad.sum()} invalid values, e.g. {values[bad].iloc[0]!r}")
    return found


def read(raw: RawFile) -> pd.DataFrame:
    return pd.read_csv(raw.path, dtype=str, keep_default_na=False, encoding="utf-8")


def digests(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.csv"))}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Consortium, float]:
    started = time.perf_counter()
    consortium = generate(tmp_path_factory.mktemp("consortium"), students=STUDENTS, seed=0)
    return consortium, time.perf_counter() - started


@pytest.fixture(scope="module")
def consortium(generated) -> Consortium:
    return generated[0]


@pytest.fixture(scope="module")
def tables(consortium) -> dict[str, pd.DataFrame]:
    """Every table over all files, with the file's institution and year added."""
    parts: dict[str, list[pd.DataFrame]] = {}
    for raw in consortium.files:
        parts.setdefault(raw.table, []).append(read(raw).assign(_inst=raw.institution, _year=raw.year))
    return {table: pd.concat(frames, ignore_index=True) for table, frames in parts.items()}


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    first = generate(tmp_path / "a", students=400, seed=7)
    again = generate(tmp_path / "b", students=400, seed=7)
    other = generate(tmp_path / "c", students=400, seed=8)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert [(f.institution, f.table, f.year, f.rows) for f in first.files] == [
        (f.institution, f.table, f.year, f.rows) for f in again.files
    ]
    assert first.institutions == again.institutions
    assert digests(tmp_path / "a") != digests(tmp_path / "c")
    assert (other.students, other.seed) == (400, 8)


def test_generation_is_fast(generated):
    consortium, seconds = generated
    assert seconds < 15, f"{STUDENTS} students took {seconds:.1f} s"
    assert (consortium.students, consortium.seed) == (STUDENTS, 0)


def test_every_file_follows_the_element_files(consortium):
    root = consortium.files[0].path.parents[1]
    assert {f.path for f in consortium.files} == set(root.rglob("*.csv"))
    for raw in consortium.files:
        # each later year's element file extends the previous one unchanged, down to 2019-20
        spec = tomllib.loads((ELEMENTS_DIR / f"{raw.year}.toml").read_text(encoding="utf-8"))
        assert "tables" not in spec or raw.year == "2019-20"
        assert raw.path == root / raw.institution / f"{raw.table}_{raw.year}.csv"
        assert raw.year in (K12_YEARS if raw.table == "k12_enrollment" else COLLEGE_YEARS)
        content = raw.path.read_bytes().decode("utf-8")
        assert "\r" not in content and content.endswith("\n")
        header = content.split("\n", 1)[0].split(",")
        assert header == list(BASE["tables"][raw.table]["columns"]), raw.path
        frame = read(raw)
        assert len(frame) == raw.rows > 0
        assert problems(frame, raw.table, raw.year) == [], raw.path


def test_checker_catches_broken_values(consortium):
    raw = next(f for f in consortium.files if f.table == "cc_courses")
    frame = read(raw)
    assert problems(frame, raw.table, raw.year) == []
    broken = frame.copy()
    broken.loc[0, "term"] = f"{int(raw.year[:4]) + 1}FA"  # next year's term
    broken.loc[1, "grade"] = "A+"
    broken.loc[2, "local_id"] = ""
    assert len(problems(broken, raw.table, raw.year)) == 3


def test_consortium_has_all_segments(consortium):
    members = consortium.institutions
    assert len(members) >= 13
    by_segment = {s: [m for m in members if m.segment == s] for s in SEGMENT_TABLES}
    assert [len(by_segment[s]) for s in ("k12", "cc", "univ")] == [6, 4, 3]
    assert len({m.slug for m in members}) == len({m.name for m in members}) == len(members)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", m.slug) for m in members)
    segment = {m.slug: m.segment for m in members}
    for raw in consortium.files:
        assert raw.table in SEGMENT_TABLES[segment[raw.institution]]
    assert {f.institution for f in consortium.files} == set(segment)


def test_k12_enrollment_follows_students_through_high_school(tables):
    k12 = tables["k12_enrollment"]
    assert not k12.duplicated(["ssid", "_year"]).any()
    assert k12["ssid"].nunique() == STUDENTS
    first_year = k12[k12["_year"] == "2019-20"]
    assert set(first_year["grade_level"]) == {"9"} and len(first_year) == STUDENTS // 2
    sizes = k12.groupby("_inst").size().sort_values()
    assert sizes.iloc[-1] > 3 * sizes.iloc[0]  # strongly skewed district sizes
    assert (k12.groupby("ssid")["_inst"].nunique() > 1).any()  # transfers between districts
    below = k12[k12["grade_level"] != "12"]
    assert (below["graduated"] == "").all() and (below["ag_complete"] == "").all()
    seniors = k12[k12["grade_level"] == "12"]
    assert seniors["graduated"].isin(["Y", "N"]).all() and seniors["ag_complete"].isin(["Y", "N"]).all()
    graduated = seniors["graduated"] == "Y"
    assert 0.78 < graduated.mean() < 0.92
    assert 0.35 < (seniors.loc[graduated, "ag_complete"] == "Y").mean() < 0.65
    assert (seniors.loc[~graduated, "ag_complete"] == "N").all()
    by_ses = seniors.groupby("socioecon_disadvantaged")["graduated"].apply(lambda s: (s == "Y").mean())
    assert by_ses["Y"] < by_ses["N"]
    el = k12.groupby("grade_level")["english_learner"].apply(lambda s: (s == "Y").mean())
    assert 0.10 < el["9"] < 0.20 and el["12"] < el["9"]
    assert abs((k12["gender"] == "F").mean() - 0.49) < 0.02


def test_students_are_linked_across_segments(tables):
    k12, cc, univ = tables["k12_enrollment"], tables["cc_students"], tables["univ_students"]
    identity = ["first_name", "last_name", "birth_date"]
    people = k12.drop_duplicates(["ssid", *identity])
    assert not people["ssid"].duplicated().any()  # one identity per ssid
    reference = people.set_index("ssid")[identity]
    with_ssid = cc[cc["ssid"] != ""]
    assert with_ssid["ssid"].isin(reference.index).mean() > 0.8
    assert not with_ssid["ssid"].isin(reference.index).all()  # out-of-region students too
    assert 0.1 < (cc["ssid"] == "").mean() < 0.3
    assert univ.loc[univ["ssid"] != "", "ssid"].isin(reference.index).mean() > 0.7
    for table, frame in tables.items():
        linked = frame[frame["ssid"].isin(reference.index)]
        expected = reference.loc[linked["ssid"], identity].to_numpy()
        assert (linked[identity].to_numpy() == expected).all(), table
    # all college rows of one student carry the same identifiers
    cc_rows = pd.concat(
        [tables[t][["_inst", "local_id", "ssid", *identity]] for t in ("cc_students", "cc_courses", "cc_awards")]
    )
    assert (cc_rows.drop_duplicates().groupby(["_inst", "local_id"]).size() == 1).all()


def test_college_tables_are_consistent(tables):
    students, courses = tables["cc_students"], tables["cc_courses"]

    def keys(frame: pd.DataFrame) -> set[tuple[str, str, str]]:
        return set(frame[["_inst", "local_id", "_year"]].itertuples(index=False, name=None))

    assert keys(courses) <= keys(students) and keys(tables["cc_awards"]) <= keys(students)
    assert (students.groupby(["_inst", "local_id"])["first_term"].nunique() == 1).all()
    success = courses["grade"].isin(["A", "B", "C", "P"]).mean()
    assert 0.62 < success < 0.8
    assert 0.6 < (courses["transfer_level"] == "Y").mean() < 0.8
    assert set(courses.loc[courses["math_english"] == "M", "subject"]) <= {"MATH", "STAT"}
    assert set(courses.loc[courses["math_english"] == "E", "subject"]) == {"ENGL"}
    univ = tables["univ_students"]
    assert ((univ["degree"] == "") == (univ["degree_term"] == "")).all()
    degrees = univ[univ["degree"] != ""]
    assert len(degrees) > 0 and (degrees["admission_basis"] == "transfer").all()
    assert not degrees.duplicated(["_inst", "local_id"]).any()
    assert set(univ["admission_basis"]) == {"first-time", "transfer"}


def test_small_cells_occur(tables):
    for table in ("k12_enrollment", "cc_students"):
        counts = tables[table].groupby(["_inst", "_year", "ethnicity"]).size()
        assert counts.between(1, 9).any(), table
        assert (counts >= 10).any(), table


@pytest.mark.parametrize("students", [99, 0, -5])
def test_too_few_students_is_rejected(tmp_path, students):
    with pytest.raises(ValueError, match="100"):
        generate(tmp_path / "out", students=students)
    assert not (tmp_path / "out").exists()
