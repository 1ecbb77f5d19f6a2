"""A researcher's session, as a whole: no ordinary cell refused, no small cell recoverable.

Thirty-odd ordinary cells over the demo consortium in one secure kernel — counts, margins added
later, shares, one's own college's rows, the other colleges' rows, re-displays, rates of yes/no
columns, a merge of K-12 and college records, a 3-way crosstab — then the same cells in
another order in a fresh kernel with a fresh ledger. Every table the kernel showed is read
back (``to_dict`` of the protected result) and handed, with the definition of the rows it
counted, to an attacker written apart from the filter (``tests.attacker``), who solves one
linear program over everything shown per record set.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import pandas as pd
import pytest

from tests.attacker import ALL, Output, Ratios, leaks
from tests.kernel_client import KernelSession
from warehouse.db import connect
from warehouse.read import read_table

DUMP = r"""
import json, math
import pandas as pd
def _label(x):
    if hasattr(x, "item"):
        x = x.item()
    return x
def dump(t):
    cells = []
    if isinstance(t, pd.DataFrame):
        for column, values in t.to_dict().items():
            for row, value in values.items():
                r = row if isinstance(row, tuple) else (row,)
                c = column if isinstance(column, tuple) else (column,)
                cells.append([[_label(x) for x in (*r, *c)], None if pd.isna(value) else float(value)])
    elif isinstance(t, pd.Series):
        for row, value in t.to_dict().items():
            r = row if isinstance(row, tuple) else (row,)
            cells.append([[_label(x) for x in r], None if pd.isna(value) else float(value)])
    else:
        cells.append([[], None if pd.isna(t) or type(t).__name__ == "SmallCount" else float(t)])
    print("DUMP " + json.dumps(cells))
"""


@dataclass(frozen=True)
class Cell:
    """One cell of the session: code ending in an expression whose value is dumped (or None),
    what the attacker reads it as, and over which record set."""

    name: str
    code: str
    table: str | None = None  # cc_students | k12_enrollment
    dims: tuple[str, ...] = ()
    mask: str | None = None  # a predicate on the records' columns, in the attacker's terms
    uses: tuple[str, ...] = ()
    kind: str = "counts"  # counts | shares-index | shares-all | rates (the last dim is the yes/no column)


def session_cells(college: str, district: str) -> list[Cell]:
    mine = f"g.institution == {college!r}"
    return [
        Cell("load", "students = data.load('cc_students')\nk12 = data.load('k12_enrollment')"),
        Cell(
            "college × ethnicity",
            "pd.crosstab(students.institution, students.ethnicity)",
            "cc_students",
            ("institution", "ethnicity"),
        ),
        Cell(
            "with margins",
            "pd.crosstab(students.institution, students.ethnicity, margins=True)",
            "cc_students",
            ("institution", "ethnicity"),
        ),
        Cell("ethnicity", "students.ethnicity.value_counts()", "cc_students", ("ethnicity",)),
        Cell("colleges", "students.groupby('institution').size()", "cc_students", ("institution",)),
        Cell(
            "college × gender",
            "pd.crosstab(students.institution, students.gender, margins=True)",
            "cc_students",
            ("institution", "gender"),
        ),
        Cell(
            "ethnicity × gender",
            "pd.crosstab(students.ethnicity, students.gender)",
            "cc_students",
            ("ethnicity", "gender"),
        ),
        Cell("own college", f"mine = students[students.institution == {college!r}]"),
        Cell(
            "own ethnicity × gender",
            "pd.crosstab(mine.ethnicity, mine.gender, margins=True)",
            "cc_students",
            ("ethnicity", "gender"),
            mine,
            ("institution",),
        ),
        Cell("own ethnicity", "mine.ethnicity.value_counts()", "cc_students", ("ethnicity",), mine, ("institution",)),
        Cell(
            "shares by college",
            "pd.crosstab(students.institution, students.ethnicity, normalize='index')",
            "cc_students",
            ("institution", "ethnicity"),
            kind="shares-index",
        ),
        Cell(
            "ethnicity shares",
            "students.ethnicity.value_counts(normalize=True)",
            "cc_students",
            ("ethnicity",),
            kind="shares-all",
        ),
        Cell(
            "first-time rate",
            "students.groupby('ethnicity').first_time.mean()",
            "cc_students",
            ("ethnicity", "first_time"),
            kind="rates",
        ),
        Cell(
            "promise rate",
            "students.groupby('institution').promise_grant.mean()",
            "cc_students",
            ("institution", "promise_grant"),
            kind="rates",
        ),
        Cell(
            "college × first-time",
            "pd.crosstab(students.institution, students.first_time, margins=True)",
            "cc_students",
            ("institution", "first_time"),
        ),
        Cell(
            "3-way",
            "pd.crosstab([students.institution, students.gender], students.first_time)",
            "cc_students",
            ("institution", "gender", "first_time"),
        ),
        Cell(
            "own promise rate",
            "mine.groupby('gender').promise_grant.mean()",
            "cc_students",
            ("gender", "promise_grant"),
            mine,
            ("institution",),
            kind="rates",
        ),
        Cell(
            "again",
            "pd.crosstab(students.institution, students.ethnicity)",
            "cc_students",
            ("institution", "ethnicity"),
        ),
        Cell(
            "not white by gender",
            "students[students.ethnicity != 'White'].gender.value_counts()",
            "cc_students",
            ("gender",),
            "g.ethnicity != 'White'",
            ("ethnicity",),
        ),
        Cell(
            "first-time × promise",
            "pd.crosstab(students.first_time, students.promise_grant, margins=True)",
            "cc_students",
            ("first_time", "promise_grant"),
        ),
        Cell(
            "the other colleges",
            f"others = students[students.institution != {college!r}]\npd.crosstab(others.ethnicity, others.gender)",
            "cc_students",
            ("ethnicity", "gender"),
            f"g.institution != {college!r}",
            ("institution",),
        ),
        Cell(
            "college × first-time groups",
            "students.groupby(['institution', 'first_time']).size()",
            "cc_students",
            ("institution", "first_time"),
        ),
        Cell("districts", "k12.groupby('institution').size()", "k12_enrollment", ("institution",)),
        Cell("k12 ethnicity", "k12.ethnicity.value_counts()", "k12_enrollment", ("ethnicity",)),
        Cell(
            "district × grade",
            "pd.crosstab(k12.institution, k12.grade_level, margins=True)",
            "k12_enrollment",
            ("institution", "grade_level"),
        ),
        Cell(
            "district × ethnicity",
            "pd.crosstab(k12.institution, k12.ethnicity)",
            "k12_enrollment",
            ("institution", "ethnicity"),
        ),
        Cell(
            "graduates",
            "grads = k12[k12.graduated == True]\n"
            "went = students[['student_key']].drop_duplicates().assign(college=True)\n"
            "linked = grads.merge(went, on='student_key', how='left')\n"
            "linked['college'] = linked['college'].fillna(False).astype(bool)\n"
            "pd.crosstab(linked.institution, linked.college, margins=True)",
            "k12_enrollment",
            ("institution", "college"),
            "g.graduated == True",
            ("graduated",),
        ),
        Cell(
            "college-going rate",
            "linked.groupby('institution').college.mean()",
            "k12_enrollment",
            ("institution", "college"),
            "g.graduated == True",
            ("graduated",),
            kind="rates",
        ),
        Cell(
            "graduates by ethnicity",
            "pd.crosstab(grads.institution, grads.ethnicity)",
            "k12_enrollment",
            ("institution", "ethnicity"),
            "g.graduated == True",
            ("graduated",),
        ),
        Cell(
            "English learners",
            "k12.groupby(['institution', 'gender']).english_learner.mean()",
            "k12_enrollment",
            ("institution", "gender", "english_learner"),
            kind="rates",
        ),
        Cell(
            "own district",
            f"district = k12[k12.institution == {district!r}]\n"
            "pd.crosstab(district.grade_level, district.ethnicity, margins=True)",
            "k12_enrollment",
            ("grade_level", "ethnicity"),
            f"g.institution == {district!r}",
            ("institution",),
        ),
        Cell(
            "named aggregation",
            "students.groupby('institution').agg(n=('student_key', 'size'))",
            "cc_students",
            ("institution",),
        ),
        Cell(
            "own first-time × gender",
            "pd.crosstab(mine.first_time, mine.gender)",
            "cc_students",
            ("first_time", "gender"),
            mine,
            ("institution",),
        ),
        Cell(
            "Pacific Islanders",
            "(students.ethnicity == 'Pacific Islander').sum()",
            "cc_students",
            (),
            "g.ethnicity == 'Pacific Islander'",
            ("ethnicity",),
        ),
        Cell(
            "value_counts of two",
            "students[['institution', 'gender']].value_counts()",
            "cc_students",
            ("institution", "gender"),
        ),
    ]


def _key(labels: list, dims: int) -> tuple:
    """A dumped label list as the attacker's labels: margins ('All', '') become ALL."""
    labels = [ALL if x in ("All", "") else x for x in labels]
    return tuple(labels[:dims])


def attacker_outputs(cell: Cell, dumped: list) -> Output | Ratios:
    mask = (lambda g, expression=cell.mask: eval(expression)) if cell.mask else None  # noqa: S307 (our own text)
    if cell.kind == "counts":
        shown = {_key(labels, len(cell.dims)): value for labels, value in dumped if len(labels) >= len(cell.dims)}
        return Output(cell.dims, shown, mask, cell.uses, cell.name)
    values: dict[tuple, tuple[tuple, float | None]] = {}
    for labels, value in dumped:
        key = _key(labels, len(cell.dims) if cell.kind != "rates" else len(cell.dims) - 1)
        if cell.kind == "shares-index":
            values[key] = ((key[0], ALL), value)
        elif cell.kind == "shares-all":
            values[key] = ((ALL,) * len(key), value)
        else:  # rates of the last dimension's True over the group
            values[(*key, True)] = ((*key, ALL), value)
    return Ratios(cell.dims, values, mask, cell.uses)


@pytest.fixture(scope="module")
def records(demo_var) -> dict[str, pd.DataFrame]:
    engine = connect(f"sqlite:///{demo_var / 'warehouse.db'}")
    students = read_table(engine, "cc_students")
    k12 = read_table(engine, "k12_enrollment")
    engine.dispose()
    k12["college"] = k12.student_key.isin(set(students.student_key))
    return {"cc_students": students, "k12_enrollment": k12}


def run_session(demo_var, tmp_path, cells: list[Cell]) -> tuple[list[str], dict[str, list]]:
    kernel = KernelSession(
        env={"ENCLAVE_VAR": str(demo_var), "ENCLAVE_LEDGER_DIR": str(tmp_path / "ledger")}, cwd=str(tmp_path)
    )
    refused: list[str] = []
    outputs: dict[str, list] = {"cc_students": [], "k12_enrollment": []}
    try:
        setup = kernel.run("import pandas as pd\nfrom kernels import data\n" + DUMP)
        assert not setup.errors, setup.errors
        for cell in cells:
            *body, last = cell.code.split("\n")
            code = "\n".join(body) + ("\n" if body else "")
            code += f"_t = {last}\ndump(_t)" if cell.table else last
            out = kernel.run(code)
            if out.errors:
                refused.append(f"{cell.name}: {out.errors[0]}")
                continue
            if cell.table:
                dumped = json.loads(next(t for t in out.texts if t.startswith("DUMP ")).strip()[5:])
                outputs[cell.table].append(attacker_outputs(cell, dumped))
    finally:
        kernel.close()
    return refused, outputs


def _choices(records) -> tuple[str, str]:
    students, k12 = records["cc_students"], records["k12_enrollment"]
    return students.institution.value_counts().index[0], k12.institution.value_counts().index[0]


def test_a_researchers_session_refuses_nothing_and_leaks_nothing(demo_var, tmp_path, records):
    cells = session_cells(*_choices(records))
    assert len([c for c in cells if c.table]) >= 30
    refused, outputs = run_session(demo_var, tmp_path, cells)
    assert refused == []
    for table, shown in outputs.items():
        assert leaks(records[table], shown, strict=False) == [], table


def test_the_same_cells_in_another_order(demo_var, tmp_path, records):
    cells = session_cells(*_choices(records))
    setup = [c for c in cells if not c.table or c.name in ("graduates", "the other colleges", "own district")]
    rest = [c for c in cells if c not in setup]
    random.Random(7).shuffle(rest)
    # the cells that define names come first; the rest in a shuffled order
    order = [c for c in setup if not c.table] + [c for c in setup if c.table] + rest
    refused, outputs = run_session(demo_var, tmp_path, order)
    assert refused == []
    for table, shown in outputs.items():
        assert leaks(records[table], shown, strict=False) == [], table
