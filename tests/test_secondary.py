"""Optimal, audited secondary suppression (output_filters.engine.secondary), without a kernel.

Every pattern is checked by an attacker written here, independently of the module's linear
system: a ``linprog`` over the inner cells of the table, with every published cell (inner,
subtotal or margin) fixed to its value, every suppressed cell in [1, grand total] and every
inner cell in [0, grand total].
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from output_filters import Policy
from output_filters.engine import secondary
from output_filters.engine.linear_system import Dimension, LinearSystem, atoms_from_records, table_cells
from output_filters.engine.secondary import attack, attack_system, protect, protect_tables

POLICY = Policy()


# ---- an independent attacker ---------------------------------------------------------------


def axis_groups(labels: pd.Index, leaves: list, parents: dict | None = None) -> list[np.ndarray]:
    """For each published label of an axis, the positions of the leaf categories it sums."""
    parents = parents or {}

    def ancestors(leaf):
        while leaf in parents:
            leaf = parents[leaf]
            yield leaf

    groups = []
    for label in labels:
        if label == "All":
            groups.append(np.arange(len(leaves)))
        elif label in leaves:
            groups.append(np.array([leaves.index(label)]))
        else:
            groups.append(np.array([i for i, leaf in enumerate(leaves) if label in set(ancestors(leaf))]))
    return groups


def independent_audit(inner: np.ndarray, published: np.ndarray, groups: list[list[np.ndarray]]) -> list[str]:
    """Failures of the FREQ(10, 30) requirement for every suppressed primary of ``published``.

    ``inner``: true counts (N-D); ``published``: the published table as an array over the axes'
    labels, NaN where suppressed; ``groups[d][i]``: the leaves that label i of axis d sums.
    """
    shape = inner.shape
    total = float(inner.sum())
    n = inner.size
    equalities, eq_values, hidden, hidden_rows = [], [], [], []
    for position in np.ndindex(published.shape):
        mask = np.zeros(shape, dtype=bool)
        mask[np.ix_(*[groups[d][i] for d, i in enumerate(position)])] = True
        row = mask.ravel().astype(float)
        if np.isnan(published[position]):
            hidden.append(position)
            hidden_rows.append(row)
        else:
            equalities.append(row)
            eq_values.append(published[position])
    a_ub = np.vstack([np.vstack(hidden_rows), -np.vstack(hidden_rows)]) if hidden_rows else None
    b_ub = np.concatenate([np.full(len(hidden_rows), total), -np.ones(len(hidden_rows))]) if hidden_rows else None
    failures = []
    for position, row in zip(hidden, hidden_rows, strict=True):
        value = float(row @ inner.ravel())
        if not 0 < value < POLICY.threshold:
            continue
        bounds = []
        for sign in (1.0, -1.0):
            result = linprog(
                sign * row,
                A_ub=a_ub,
                b_ub=b_ub,
                A_eq=np.vstack(equalities),
                b_eq=eq_values,
                bounds=[(0, total)] * n,
                method="highs",
            )
            assert result.status == 0, result.message
            bounds.append(sign * result.fun)
        low, high = bounds
        level = max(1, math.ceil(0.3 * value - 1e-9))
        if low > value - min(level, value - 1) + 1e-6 or high < value + min(level, total - value) - 1e-6:
            failures.append(f"cell {position} = {value:g}: attacker interval [{low:g}, {high:g}]")
    return failures


def dense(published: pd.DataFrame | pd.Series) -> np.ndarray:
    """A published DataFrame or full-product Series as an array over its labels (NaN = NA)."""
    if isinstance(published, pd.DataFrame) or not isinstance(published.index, pd.MultiIndex):
        return published.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    shape = tuple(len(level) for level in published.index.levels)
    codes = published.index.codes
    array = np.full(shape, np.nan)
    array[tuple(codes)] = published.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    levels = [list(level) for level in published.index.levels]
    # reorder every axis as labels appear (categories, then parents, then All)
    order = [
        [levels[d].index(x) for x in dict.fromkeys(published.index.get_level_values(d))] for d in range(len(shape))
    ]
    return array[np.ix_(*order)]


def labels_of(published: pd.DataFrame | pd.Series) -> list[pd.Index]:
    if isinstance(published, pd.DataFrame):
        return [published.index, published.columns]
    return [published.index.get_level_values(d).unique() for d in range(published.index.nlevels)]


def audit_protection(inner: np.ndarray, published, leaves: list[list], parents: list[dict] | None = None) -> list:
    parents = parents or [{}] * inner.ndim
    groups = [
        axis_groups(labels, leaf, p) for labels, leaf, p in zip(labels_of(published), leaves, parents, strict=True)
    ]
    return independent_audit(inner, dense(published), groups)


def random_counts(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.integers(10, 200, size=shape)
    small = rng.random(shape) < 0.2
    values[small] = rng.integers(1, 10, size=small.sum())
    values[rng.random(shape) < 0.05] = 0
    return values


def frame(values) -> pd.DataFrame:
    values = np.asarray(values)
    rows, cols = values.shape
    return pd.DataFrame(values, index=[f"r{i}" for i in range(rows)], columns=[f"c{j}" for j in range(cols)])


def series(values: np.ndarray) -> pd.Series:
    names = ["institution", "year", "ethnicity"][: values.ndim]
    labels = [[f"{name[0]}{i}" for i in range(n)] for name, n in zip(names, values.shape, strict=True)]
    return pd.Series(values.ravel(), index=pd.MultiIndex.from_product(labels, names=names), name="students")


# ---- small tables with a known optimum --------------------------------------------------------

KNOWN = {
    # one small cell among large ones: the cheapest rectangle through it, 3 more cells
    "one small cell needs a 2x2 rectangle": ([[5, 40, 50], [30, 60, 70], [45, 80, 90]], 1, 3),
    # two small cells in one row share one rectangle: 2 more cells
    "two small cells in a row share a rectangle": ([[5, 6, 50], [30, 60, 70], [45, 80, 90]], 2, 2),
    # small cells on a diagonal: they protect each other, 2 more cells close the rectangle
    "two small cells on a diagonal": ([[5, 40, 50], [30, 7, 70], [45, 80, 90]], 2, 2),
    # a 1-D table: one small count and a published total; the smallest other count goes too
    "a 1-D table with a total": ([[3], [40], [25], [60]], 1, 1),
}


@pytest.mark.parametrize("values, primary, secondary", KNOWN.values(), ids=KNOWN.keys())
def test_known_optimum(values, primary, secondary):
    counts = frame(values)
    if counts.shape[1] == 1:
        counts = counts["c0"]
    protection = protect(counts, POLICY)
    assert int(np.asarray(protection.primary).sum()) == primary
    assert int(np.asarray(protection.secondary).sum()) == secondary
    assert protection.optimal
    leaves = [list(counts.index)] if isinstance(counts, pd.Series) else [list(counts.index), list(counts.columns)]
    assert audit_protection(np.asarray(values).reshape([len(x) for x in leaves]), protection.table, leaves) == []


def small_table(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.integers(10, 60, size=(3, 3))
    small = rng.random((3, 3)) < 0.3
    values[small] = rng.integers(1, 10, size=small.sum())
    return values


@pytest.mark.parametrize("seed", [1, 2, 3], ids=[f"3x3 seed {s}" for s in (1, 2, 3)])
def test_no_smaller_pattern_is_safe(seed):
    """Brute force: every pattern with fewer cells fails the independent attacker."""
    values = small_table(seed)
    protection = protect(frame(values), POLICY)
    published = dense(protection.table)
    hidden = np.isnan(published)
    truth = values.astype(float)
    for axis in range(2):
        truth = np.concatenate([truth, truth.sum(axis=axis, keepdims=True)], axis=axis)
    primary = (truth > 0) & (truth < 10)
    assert protection.optimal and primary.any()
    rows, columns = labels_of(protection.table)
    groups = [axis_groups(rows, ["r0", "r1", "r2"]), axis_groups(columns, ["c0", "c1", "c2"])]
    candidates = [p for p in np.ndindex(truth.shape) if truth[p] > 0 and not primary[p]]
    for size in range(int(hidden.sum() - primary.sum())):
        for chosen in itertools.combinations(candidates, size):
            trial = np.where(primary, np.nan, truth)
            for position in chosen:
                trial[position] = np.nan
            assert independent_audit(values, trial, groups), f"{chosen} is safe with fewer cells"


def test_the_rectangle_is_the_cheapest_one():
    protection = protect(frame([[5, 40, 50], [30, 60, 70], [45, 80, 90]]), POLICY)
    hidden = protection.table.isna()
    assert hidden.loc[["r0", "r1"], ["c0", "c1"]].all().all()  # the smallest partners: 40, 30 and 60
    assert int(hidden.to_numpy().sum()) == 4
    assert protection.note == "1 cell suppressed: fewer than 10 records; 3 more to protect the totals"


def test_no_small_cells_publishes_everything_with_margins():
    counts = frame([[15, 40], [30, 60]])
    protection = protect(counts, POLICY)
    assert protection.table.loc["All"].tolist() == [45, 100, 145]
    assert protection.table["All"].tolist() == [55, 90, 145]
    assert not protection.table.isna().any().any()
    assert protection.note == "" and protection.optimal
    assert str(protection.table.dtypes.iloc[0]) == "Int64"


# ---- the attacker ----------------------------------------------------------------------------


def test_a_cell_alone_in_a_row_with_its_total_is_recovered_exactly():
    published = pd.DataFrame(
        {"c0": [5, 30, 35], "c1": [40, 60, 100], "All": [45, 90, 135]}, index=["r0", "r1", "All"]
    ).astype("Int64")
    published.loc["r0", "c0"] = pd.NA  # primary suppression only
    assert attack(published) == {("r0", "c0"): (5.0, 5.0)}
    protected = protect(frame([[5, 40], [30, 60]]), POLICY).table
    low, high = attack(protected)[("r0", "c0")]
    assert low <= 5 - 2 and high >= 5 + 2


def test_a_primary_of_9_needs_3_of_room_each_way():
    counts = frame([[9, 2, 40], [2, 50, 60], [30, 45, 70]])
    low, high = attack(protect(counts, POLICY).table)[("r0", "c0")]
    assert low <= 6 and high >= 12
    # the obvious rectangle through the 9 leaves it 1 of room above: its partners are 2s
    naive = counts.copy()
    naive["All"] = naive.sum(axis=1)
    naive.loc["All"] = naive.sum()
    naive = naive.astype("Int64")
    for row, col in [("r0", "c0"), ("r0", "c1"), ("r1", "c0"), ("r1", "c1")]:
        naive.loc[row, col] = pd.NA
    assert attack(naive)[("r0", "c0")] == (1.0, 10.0)


def test_zeros_are_shown_and_never_complementary():
    values = [[3, 0, 50, 0], [0, 40, 60, 20], [25, 35, 0, 45]]
    protection = protect(frame(values), POLICY)
    zero = frame(values) == 0
    assert not (protection.secondary.loc[zero.index, zero.columns] & zero).any().any()
    assert (protection.table.loc[zero.index, zero.columns][zero] == 0).sum().sum() == zero.sum().sum()
    assert audit_protection(np.array(values), protection.table, [list(zero.index), list(zero.columns)]) == []


# ---- seeded random tables ---------------------------------------------------------------------

RANDOM = {f"20x8 seed {s}": (s, (20, 8)) for s in range(3)} | {f"20x8x3 seed {s}": (s, (20, 8, 3)) for s in range(3)}


@pytest.mark.parametrize("seed, shape", RANDOM.values(), ids=RANDOM.keys())
def test_random_tables_pass_an_independent_audit(seed, shape):
    values = random_counts(seed, shape)
    counts = frame(values) if len(shape) == 2 else series(values)
    protection = protect(counts, POLICY)
    leaves = [list(labels) for labels in labels_of(protection.table)]
    leaves = [[x for x in axis if x != "All"] for axis in leaves]
    assert audit_protection(values, protection.table, leaves) == []
    # every total that is shown is the true total
    published = dense(protection.table)
    truth = values.astype(float)
    for axis in range(values.ndim):
        truth = np.concatenate([truth, truth.sum(axis=axis, keepdims=True)], axis=axis)
    shown = ~np.isnan(published)
    assert (published[shown] == truth[shown]).all()
    assert np.asarray(protection.primary).sum() == ((truth > 0) & (truth < 10)).sum()


def test_the_same_table_gets_the_same_pattern():
    counts = series(random_counts(1, (12, 5, 3)))
    first = protect(counts, POLICY)
    secondary._CACHE.clear()  # solve again rather than remember
    second = protect(counts.copy(), POLICY)
    assert first.optimal == second.optimal
    pd.testing.assert_series_equal(first.table, second.table)


# ---- hierarchies and linked tables ------------------------------------------------------------


def test_institutions_within_segments_get_subtotals():
    segment = {"UC1": "University", "UC2": "University", "CC1": "College", "CC2": "College", "CC3": "College"}
    values = np.array([[40, 3, 50], [30, 60, 45], [20, 25, 8], [35, 40, 30], [50, 12, 65]])
    counts = pd.DataFrame(values, index=pd.Index(list(segment), name="institution"), columns=["A", "B", "C"])
    protection = protect(counts, POLICY, hierarchies={"institution": segment})
    table = protection.table
    assert list(table.index) == ["UC1", "UC2", "CC1", "CC2", "CC3", "University", "College", "All"]
    shown = table.loc["College"].dropna()
    truth = counts.loc[["CC1", "CC2", "CC3"]].sum()
    assert all(shown[c] == (truth[c] if c != "All" else truth.sum()) for c in shown.index)
    leaves = [list(segment), ["A", "B", "C"]]
    assert audit_protection(values, table, leaves, [segment, {}]) == []
    groups = [axis_groups(table.index, list(segment), segment), axis_groups(table.columns, ["A", "B", "C"])]
    intervals = attack(table, hierarchies={"institution": segment})
    assert intervals
    for (row, col), (low, high) in intervals.items():
        truth = values[np.ix_(groups[0][table.index.get_loc(row)], groups[1][table.columns.get_loc(col)])].sum()
        assert low - 1e-6 <= truth <= high + 1e-6


def test_a_3d_table_with_a_hierarchy_gets_subtotals_at_every_level():
    values = random_counts(4, (6, 4, 3))
    counts = series(values)
    segment = {f"i{i}": ("University" if i < 2 else "College") for i in range(6)}
    protection = protect(counts, POLICY, hierarchies={"institution": segment})
    table = protection.table
    assert table.index.get_level_values("institution").unique().tolist()[-3:] == ["University", "College", "All"]
    shown = table.loc[("College", "All", "All")]
    assert pd.isna(shown) or shown == values[2:].sum()
    leaves = [list(segment), [f"y{j}" for j in range(4)], [f"e{k}" for k in range(3)]]
    assert audit_protection(values, table, leaves, [segment, {}, {}]) == []


def test_labels_that_are_numbers_and_axes_with_one_name():
    counts = pd.DataFrame([[5, 40, 50], [30, 60, 70], [45, 80, 90]], index=[2021, 2022, 2023], columns=[1, 2, 3])
    counts.index.name = counts.columns.name = "year"
    protection = protect(counts, POLICY)
    assert list(protection.table.index) == [2021, 2022, 2023, "All"]
    assert protection.table.index.name == "year" and protection.table.columns.name == "year"
    assert int(protection.table.isna().to_numpy().sum()) == 4


def test_attack_refuses_a_table_whose_totals_do_not_add_up():
    published = pd.DataFrame({"a": [5, 30, 35], "b": [40, 60, 100], "All": [45, 90, 999]}, index=["x", "y", "All"])
    published = published.astype("Int64")
    published.loc["x", "a"] = pd.NA
    with pytest.raises(ValueError, match="contradict"):
        attack(published)


def test_attack_on_a_1d_table():
    published = pd.Series({"a": 3, "b": 40, "c": 25, "All": 68}).astype("Int64")
    published["a"] = pd.NA
    assert attack(published) == {"a": (3.0, 3.0)}
    low, high = attack(protect(pd.Series({"a": 3, "b": 40, "c": 25}), POLICY).table)["a"]
    assert low <= 2 and high >= 4


def school_records(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    schools = [f"S{i}" for i in range(8)]
    size = 1500
    school = rng.choice(schools, size=size, p=rng.dirichlet(np.full(8, 2.0)))
    return pd.DataFrame({"school": school, "grade": rng.choice(range(6, 13), size=size)})


BAND = {6: "6-8", 7: "6-8", 8: "6-8", 9: "9-10", 10: "9-10", 11: "11-12", 12: "11-12"}


def requirement_failures(system: LinearSystem, suppressed: np.ndarray) -> int:
    values = system.cell_values
    failures = 0
    for cell, (low, high) in attack_system(system, suppressed, POLICY).items():
        v = values[cell]
        if 0 < v < 10:
            level = max(1, math.ceil(0.3 * v - 1e-9))
            failures += low > v - min(level, v - 1) + 1e-6 or high < v + min(level, system.upper - v) - 1e-6
    return failures


def test_linked_tables_must_be_protected_together():
    atoms = atoms_from_records(school_records(5), ["school", "grade"])
    by_grade = table_cells(atoms, ["school", "grade"], name="school × grade")
    by_band = table_cells(atoms, ["school", Dimension("grade", recode=BAND, name="band")], name="school × band")
    joint = LinearSystem.link(atoms, [by_grade, by_band])
    # separately: each table protected on its own, then both published
    suppressed = np.ones(joint.n_cells, dtype=bool)
    for table, position in zip((by_grade, by_band), joint.positions, strict=True):
        (alone,) = protect_tables(atoms, [table], POLICY)
        shown = ~np.asarray(alone.table.isna()).ravel()
        suppressed[position[shown]] = False
    assert requirement_failures(joint, suppressed) > 0
    # together: one pattern for both
    grade_table, band_table = protect_tables(atoms, [by_grade, by_band], POLICY)
    together = np.ones(joint.n_cells, dtype=bool)
    for published, position in zip((grade_table, band_table), joint.positions, strict=True):
        together[position[~np.asarray(published.table.isna()).ravel()]] = False
    assert requirement_failures(joint, together) == 0
    assert list(band_table.table.columns) == ["6-8", "9-10", "11-12", "All"]


# ---- the work budget and bad input -----------------------------------------------------------


@pytest.mark.parametrize("work", [1, 400, 3000], ids=["no work at all", "one master", "a few rounds"])
def test_a_pattern_cut_short_by_the_budget_is_still_safe(work):
    values = random_counts(3, (20, 8, 3))
    protection = protect(series(values), Policy(suppression_work=work))
    assert not protection.optimal
    leaves = [[x for x in axis if x != "All"] for axis in labels_of(protection.table)]
    assert audit_protection(values, protection.table, leaves) == []


BAD = {
    "negative count": (frame([[3, -1], [20, 30]]), "negative"),
    "non-integer count": (frame([[3.5, 11], [20, 30]]), "non-integer"),
    "empty table": (pd.DataFrame(), "empty"),
    "text instead of counts": (pd.DataFrame({"a": ["x", "y"]}), "numbers"),
    "infinite count": (frame([[np.inf, 11], [20, 30]]), "infinite"),
}


@pytest.mark.parametrize("counts, problem", BAD.values(), ids=BAD.keys())
def test_malformed_input_is_refused_with_the_reason(counts, problem):
    with pytest.raises(ValueError, match=problem):
        protect(counts, POLICY)


def test_a_large_table_without_small_cells_needs_no_search(monkeypatch):
    def no_search(*args, **kwargs):
        raise AssertionError("a table without small cells was searched")

    monkeypatch.setattr(secondary, "suppress_system", no_search)
    protection = protect(frame(np.full((20, 10), 5000)), POLICY)
    assert not protection.table.isna().any().any() and protection.optimal
