"""Differencing across subsets, through a real kernel, against the independent attacker.

A table over a subset of a loaded frame (a mask, ``query``, ``isin``, ``loc`` with a mask,
``groupby().filter``, a merge that keeps the left rows) is linked to tables over the frame it
came from and to other subsets of it. The same pairs protected table by table (the engine
alone) give small cells away: the negative controls show the attack works.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from output_filters import Policy, protect
from tests.attacker import Output, leaks, shown_cells
from tests.kernel_client import KernelSession
from tests.test_filter_session import DUMP
from warehouse.db import connect
from warehouse.read import read_table


@pytest.fixture(scope="module")
def students(demo_var) -> pd.DataFrame:
    engine = connect(f"sqlite:///{demo_var / 'warehouse.db'}")
    frame = read_table(engine, "cc_students")
    engine.dispose()
    return frame


@pytest.fixture
def kernel(demo_var, tmp_path):
    session = KernelSession(
        env={"ENCLAVE_VAR": str(demo_var), "ENCLAVE_LEDGER_DIR": str(tmp_path / "ledger")}, cwd=str(tmp_path)
    )
    setup = session.run("import pandas as pd\nfrom kernels import data\nstudents = data.load('cc_students')\n" + DUMP)
    assert not setup.errors, setup.errors
    yield session
    session.close()


def shown(kernel: KernelSession, code: str, dims: tuple[str, ...]) -> dict:
    out = kernel.run(f"dump({code})")
    assert not out.errors, out.errors
    dumped = json.loads(next(t for t in out.texts if t.startswith("DUMP ")).strip()[5:])
    return {tuple("All" if x in ("All", "") else x for x in labels[: len(dims)]): value for labels, value in dumped}


def alone(table: pd.DataFrame | pd.Series, dims: tuple[str, ...]) -> dict:
    return shown_cells(protect(table, Policy()).table, dims)


def leaky_college(students: pd.DataFrame) -> str:
    """A college whose own ethnicity × gender table, protected alone, fills in the consortium table's gaps."""
    whole = alone(pd.crosstab(students.institution, students.ethnicity), ("institution", "ethnicity"))
    for college in students.institution.unique():
        mine = students[students.institution == college]
        own = alone(pd.crosstab(mine.ethnicity, mine.gender), ("ethnicity", "gender"))
        outputs = [
            Output(("institution", "ethnicity"), whole),
            Output(("ethnicity", "gender"), own, lambda g, c=college: g.institution == c, ("institution",)),
        ]
        if leaks(students, outputs):
            return college
    pytest.fail("the demo should have a college whose own table leaks when protected alone")


def test_one_colleges_table_after_the_consortium_table(kernel, students):
    college = leaky_college(students)  # the negative control: table by table, small cells come back
    whole = shown(
        kernel, "pd.crosstab(students.institution, students.ethnicity, margins=True)", ("institution", "ethnicity")
    )
    kernel.run(f"mine = students[students.institution == {college!r}]")
    own = shown(kernel, "pd.crosstab(mine.ethnicity, mine.gender, margins=True)", ("ethnicity", "gender"))
    outputs = [
        Output(("institution", "ethnicity"), whole),
        Output(("ethnicity", "gender"), own, lambda g: g.institution == college, ("institution",)),
    ]
    assert leaks(students, outputs) == []


def complement_pair(students: pd.DataFrame) -> tuple[str, str]:
    """(column, value) such that value_counts of A over all and over rows with B != v differ by small counts."""
    for column, value in (("gender", "X"), ("ethnicity", "Pacific Islander"), ("ethnicity", "Filipino")):
        rest = students[students[column] != value]
        all_counts = alone(students.institution.value_counts(), ("institution",))
        rest_counts = alone(rest.institution.value_counts(), ("institution",))
        assert all_counts and rest_counts
        difference = students[students[column] == value].institution.value_counts()
        if ((difference > 0) & (difference < 10)).any() and all(v is not None for v in rest_counts.values()):
            return column, value
    pytest.fail("the demo should have a small complement")


def test_counts_over_everything_and_over_the_rest_do_not_differ_by_a_small_count(kernel, students):
    column, value = complement_pair(students)
    whole = shown(kernel, "students.institution.value_counts()", ("institution",))
    rest = shown(kernel, f"students[students.{column} != {value!r}].institution.value_counts()", ("institution",))
    difference = students[students[column] == value].institution.value_counts()
    for college, n in difference.items():
        if 0 < n < 10:  # never both shown: the difference would be the small count
            assert whole.get((college,)) is None or rest.get((college,)) is None
    outputs = [
        Output(("institution",), whole),
        Output(("institution",), rest, lambda g: g[column] != value, (column,)),
    ]
    assert leaks(students, outputs) == []


SUBSETS = {
    "mask": "students[students.first_time]",
    "query": "students.query('first_time')",
    "loc": "students.loc[students.first_time]",
    "isin": "students[students.first_time.isin([True])]",
    "filter": "students.groupby('first_time').filter(lambda g: g.first_time.all())",
}


@pytest.mark.parametrize("spelling", list(SUBSETS.values()), ids=list(SUBSETS))
def test_every_spelling_of_a_subset_is_the_same_subset(kernel, students, spelling):
    """First-time students by ethnicity, after everyone by ethnicity and first-time: each way of
    taking the subset gives the same answer, linked to the table over everyone."""
    whole = shown(
        kernel, "pd.crosstab(students.ethnicity, students.first_time, margins=True)", ("ethnicity", "first_time")
    )
    reference = shown(kernel, "students[students.first_time].ethnicity.value_counts()", ("ethnicity",))
    again = shown(kernel, f"({spelling}).ethnicity.value_counts()", ("ethnicity",))
    assert again == reference
    outputs = [
        Output(("ethnicity", "first_time"), whole),
        Output(("ethnicity",), again, lambda g: g.first_time, ("first_time",)),
    ]
    assert leaks(students, outputs) == []


def test_overlapping_subsets_and_their_union(kernel, students):
    tables = {
        "first-time": ("students[students.first_time].ethnicity.value_counts()", lambda g: g.first_time),
        "promise": ("students[students.promise_grant].ethnicity.value_counts()", lambda g: g.promise_grant),
        "either": (
            "students[students.first_time | students.promise_grant].ethnicity.value_counts()",
            lambda g: g.first_time | g.promise_grant,
        ),
        "everyone": ("students.ethnicity.value_counts()", None),
    }
    outputs = []
    for code, mask in tables.values():
        outputs.append(
            Output(("ethnicity",), shown(kernel, code, ("ethnicity",)), mask, ("first_time", "promise_grant"))
        )
    assert leaks(students, outputs) == []


def test_a_merge_that_drops_rows_is_a_subset_of_its_left_frame(kernel, students, demo_var):
    engine = connect(f"sqlite:///{demo_var / 'warehouse.db'}")
    k12 = read_table(engine, "k12_enrollment")
    engine.dispose()
    k12["college"] = k12.student_key.isin(set(students.student_key))
    kernel.run(
        "k12 = data.load('k12_enrollment')\n"
        "went = students[['student_key']].drop_duplicates()\n"
        "linked = k12.merge(went, on='student_key', how='inner')"
    )
    whole = shown(kernel, "pd.crosstab(k12.institution, k12.ethnicity, margins=True)", ("institution", "ethnicity"))
    inner = shown(
        kernel, "pd.crosstab(linked.institution, linked.ethnicity, margins=True)", ("institution", "ethnicity")
    )
    outputs = [
        Output(("institution", "ethnicity"), whole),
        Output(("institution", "ethnicity"), inner, lambda g: g.college, ("college",)),
    ]
    assert leaks(k12, outputs) == []
    same = kernel.run("print(linked.index.isin(k12.index).all())")
    assert same.texts == ["True\n"]  # the merged rows keep the records' ids
