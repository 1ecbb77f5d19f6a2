"""Linked tables in one kernel session are protected together (the session's ledger).

School × grade, then school × grade band, over the same records: protected one at a time,
a joint linear program recovers small cells; shown through the secure kernel, it does not.
The attacker here is written independently of the filter's engine (scipy's linprog over the
school × grade cells, bounds [0, total]).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from output_filters import Policy, protect
from tests.kernel_client import KernelSession

BAND = {6: "6-8", 7: "6-8", 8: "6-8", 9: "9-10", 10: "9-10", 11: "11-12", 12: "11-12"}
RECORDS = """
import numpy as np, pandas as pd
from kernels.marks import mark_record_level
rng = np.random.default_rng(5)
school = rng.choice([f"S{i}" for i in range(8)], size=1500, p=rng.dirichlet(np.full(8, 2.0)))
r = mark_record_level(pd.DataFrame({"school": school, "grade": rng.choice(range(6, 13), size=1500)}), "test")
r["band"] = r.grade.map(BAND)
"""


def records() -> pd.DataFrame:
    namespace = {"BAND": BAND}
    exec(RECORDS.replace("mark_record_level(", "(lambda f, s: f)("), namespace)  # noqa: S102 (our own text)
    return namespace["r"]


def failures(truth: pd.DataFrame, grade: dict, band: dict) -> list:
    """Small school × grade cells an attacker narrows below their protection interval."""
    counts = pd.crosstab(truth.school, truth.grade)
    schools, grades = list(counts.index), list(counts.columns)
    n = len(schools) * len(grades)
    total = float(counts.to_numpy().sum())

    def var(s, g):
        return schools.index(s) * len(grades) + grades.index(g)

    rows, rhs = [], []

    def known(cells, value):
        row = np.zeros(n)
        row[[var(s, g) for s, g in cells]] = 1
        rows.append(row)
        rhs.append(value)

    for column, cells in grade.items():  # to_dict() of the school × grade table: {grade: {school: value}}
        for s, value in cells.items():
            if pd.isna(value):
                continue
            gs = grades if column == "All" else [column]
            ss = schools if s == "All" else [s]
            known([(a, b) for a in ss for b in gs], float(value))
    for column, cells in band.items():
        for s, value in cells.items():
            if pd.isna(value):
                continue
            gs = grades if column == "All" else [g for g in grades if BAND[g] == column]
            ss = schools if s == "All" else [s]
            known([(a, b) for a in ss for b in gs], float(value))
    failed = []
    for s in schools:
        for g in grades:
            v = counts.loc[s, g]
            shown = grade.get(g, {}).get(s)
            if not (0 < v < 10) or (shown is not None and not pd.isna(shown)):
                continue
            level = max(1, math.ceil(0.3 * v - 1e-9))
            c = np.zeros(n)
            c[var(s, g)] = 1
            low = linprog(c, A_eq=np.array(rows), b_eq=rhs, bounds=[(0, total)] * n).fun
            high = -linprog(-c, A_eq=np.array(rows), b_eq=rhs, bounds=[(0, total)] * n).fun
            if high < v + level - 1e-6 or low > max(0, v - level) + 1e-6:
                failed.append((s, g, v, round(low, 2), round(high, 2)))
    return failed


def published(table: pd.DataFrame) -> dict:
    return {column: dict(table[column]) for column in table.columns}


def test_separately_protected_tables_give_small_cells_away():
    truth = records()
    grade = protect(pd.crosstab(truth.school, truth.grade), Policy()).table
    band = protect(pd.crosstab(truth.school, truth.band), Policy()).table
    assert failures(truth, published(grade), published(band))


@pytest.fixture
def kernel(tmp_path):
    session = KernelSession(env={"ENCLAVE_VAR": str(tmp_path / "var")}, cwd=str(tmp_path))
    setup = session.run(f"BAND = {BAND!r}\n{RECORDS}")
    assert not setup.errors, setup.errors
    yield session
    session.close()


def _shown(kernel: KernelSession, code: str) -> dict:
    out = kernel.run(
        f"t = {code}\nprint(repr({{c: {{k: (None if pd.isna(v) else int(v)) for k, v in t[c].items()}} "
        f"for c in t.columns}}))"
    )
    assert not out.errors, out.errors
    return eval("".join(out.texts))  # noqa: S307 (the kernel printed a dict literal, maybe in parts)


def test_the_kernel_protects_linked_tables_together(kernel):
    truth = records()
    grade = _shown(kernel, "pd.crosstab(r.school, r.grade, margins=True)")
    band = _shown(kernel, "pd.crosstab(r.school, r.band, margins=True)")
    assert failures(truth, grade, band) == []
    value_counts = kernel.run("print(r.school.value_counts().isna().sum() >= 0)")
    assert value_counts.texts == ["True\n"]
