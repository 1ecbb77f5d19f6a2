"""Count tables in pandas' shapes (output_filters.engine.suppress over the exact engine), without a kernel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from output_filters import Policy, protect_counts

POLICY = Policy()


def subtraction_attack(table: pd.DataFrame, row_totals: pd.Series, col_totals: pd.Series) -> dict:
    """Recover suppressed cells by repeatedly solving rows/columns with one unknown."""
    known = table.astype("Float64").copy()
    recovered = {}
    progress = True
    while progress:
        progress = False
        for axis, totals in ((1, row_totals), (0, col_totals)):
            lines = known.iterrows() if axis == 1 else known.items()
            for label, line in lines:
                missing = line[line.isna()]
                if len(missing) == 1:
                    other = missing.index[0]
                    value = totals[label] - line.dropna().sum()
                    cell = (label, other) if axis == 1 else (other, label)
                    known.loc[cell] = value
                    recovered[cell] = value
                    progress = True
    return recovered


def random_table(seed: int, rows: int = 12, cols: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.integers(10, 200, size=(rows, cols))
    small = rng.random((rows, cols)) < 0.2
    values[small] = rng.integers(1, 10, size=small.sum())
    values[rng.random((rows, cols)) < 0.05] = 0
    return pd.DataFrame(values, index=[f"r{i}" for i in range(rows)], columns=[f"c{j}" for j in range(cols)])


def test_primary_cells_are_those_between_zero_and_threshold():
    table = pd.DataFrame({"a": [0, 3, 9, 10], "b": [50, 60, 70, 80]}, index=list("wxyz"))
    protection = protect_counts(table, POLICY)
    assert protection.primary["a"].tolist() == [False, True, True, False]
    assert pd.isna(protection.table.loc["x", "a"]) and pd.isna(protection.table.loc["y", "a"])
    assert protection.table.loc["w", "a"] == 0  # zeros are shown


def test_zeros_are_never_complementary_cells():
    table = pd.DataFrame({"a": [3, 0], "b": [0, 40], "c": [50, 60]}, index=["x", "y"])
    protection = protect_counts(table, POLICY)
    assert not (protection.secondary & (table == 0)).any().any()
    assert protection.table.loc["x", "b"] == 0 and protection.table.loc["y", "a"] == 0
    assert protection.secondary.loc["x", "c"]  # the only other non-zero cell of row x


@pytest.mark.parametrize("seed", range(8), ids=[f"seed-{s}" for s in range(8)])
def test_no_primary_cell_falls_to_subtraction(seed):
    table = random_table(seed)
    protection = protect_counts(table, POLICY, margins=True)
    published = protection.table
    inner = published.drop(index="All", columns="All")
    recovered = subtraction_attack(inner, table.sum(axis=1), table.sum(axis=0))
    primaries = {(r, c) for r in table.index for c in table.columns if protection.primary.loc[r, c]}
    assert primaries, "the random table should have small cells"
    assert not primaries & set(recovered)
    # totals are published truthfully where not suppressed
    shown = published.loc["All"].dropna()
    assert (shown == pd.concat([table.sum(), pd.Series({"All": table.values.sum()})])[shown.index]).all()


def test_margins_are_suppressed_when_small():
    table = pd.DataFrame({"a": [3, 40], "b": [0, 50], "c": [0, 60]}, index=["x", "y"])
    protection = protect_counts(table, POLICY, margins=True)
    assert pd.isna(protection.table.loc["x", "All"])  # a row total of 3 is itself a small count
    assert list(protection.table.columns) == ["a", "b", "c", "All"]


def test_one_dimensional_counts_with_a_known_total():
    counts = pd.Series([500, 300, 5, 40], index=list("abcd"), name="count")
    protection = protect_counts(counts, POLICY)
    assert protection.table.isna().tolist() == [False, False, True, True]
    assert protection.note(POLICY) == "1 cell suppressed: fewer than 10 records; 1 more to protect the totals"


def test_multiindex_counts_are_protected_along_every_dimension():
    index = pd.MultiIndex.from_product([["s1", "s2", "s3"], ["F", "M"], ["9", "10"]], names=["school", "g", "grade"])
    values = [40, 3, 50, 60, 45, 55, 44, 66, 70, 30, 20, 25]
    protection = protect_counts(pd.Series(values, index=index), POLICY)
    cube = protection.table.isna().to_numpy().reshape(3, 2, 2)
    for axis in range(3):
        assert (cube.sum(axis=axis) != 1).all(), f"a lonely suppression along axis {axis}"
    assert protection.table.isna().sum() >= 4


def test_threshold_comes_from_the_policy():
    table = pd.DataFrame({"a": [12, 40], "b": [30, 50]}, index=["x", "y"])
    assert not protect_counts(table, Policy(threshold=10)).table.isna().any().any()
    assert pd.isna(protect_counts(table, Policy(threshold=15)).table.loc["x", "a"])


def test_nested_axes_keep_pandas_shape_and_protect_the_whole_cube():
    index = pd.MultiIndex.from_product([["A", "B"], ["2023", "2024"]], names=["inst", "year"])
    counts = pd.DataFrame(
        [[50, 3, 40], [20, 30, 25], [15, 12, 60], [44, 18, 33]],
        index=index,
        columns=pd.Index(["x", "y", "z"], name="eth"),
    )
    protection = protect_counts(counts, POLICY, margins=True)
    table = protection.table
    assert list(table.index)[-1] == ("All", "") and list(table.columns)[-1] == "All"
    assert pd.isna(table.loc[("A", "2023"), "y"])
    assert table.loc[("All", ""), "All"] == counts.to_numpy().sum()
    inner = table.drop(index=("All", ""), columns="All")
    for _label, row in inner.iterrows():  # no row holds a single suppressed cell
        assert row.isna().sum() != 1
    assert protection.primary.loc[("A", "2023"), "y"] and not protection.secondary.loc[("A", "2023"), "y"]


def test_zeros_are_hidden_when_the_policy_says_so():
    table = pd.DataFrame({"a": [0, 30, 40], "b": [50, 60, 0]}, index=list("xyz"))
    shown = protect_counts(table, Policy(show_zeros=True)).table
    hidden = protect_counts(table, Policy(show_zeros=False)).table
    assert shown.loc["x", "a"] == 0 and shown.loc["z", "b"] == 0
    assert pd.isna(hidden.loc["x", "a"]) and pd.isna(hidden.loc["z", "b"])
    assert hidden.loc["y", "a"] == 30
