"""Shares, percentages and rates are computed from the protected count table.

A share is shown only where its count and its denominator are both shown; a rate of a
yes/no column only where its yes-count and its group are; a sum of yes/no values is a count
in every form; a small group's rate is suppressed, never band-coded. Checked through a real
kernel, and against the independent attacker, who reads shares as the linear constraints
they are (count − share × total = 0).
"""

# ruff: noqa: F811 (pytest fixtures imported from tests.filter_fixtures)
from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.attacker import ALL, Output, Ratios, leaks
from tests.filter_fixtures import session, truth  # noqa: F401
from tests.test_filter_session import DUMP
from warehouse.db import connect
from warehouse.read import read_table


@pytest.fixture(scope="module")
def k12(demo_var) -> pd.DataFrame:
    engine = connect(f"sqlite:///{demo_var / 'warehouse.db'}")
    frame = read_table(engine, "k12_enrollment")
    engine.dispose()
    return frame


@pytest.fixture(scope="module")
def dumping(session):
    out = session.run(DUMP)
    assert not out.errors, out.errors
    return session


def dumped(kernel, code: str, width: int) -> dict:
    out = kernel.run(f"dump({code})")
    assert not out.errors, out.errors
    cells = json.loads(next(t for t in out.texts if t.startswith("DUMP ")).strip()[5:])
    return {tuple(ALL if x in ("All", "") else x for x in labels[:width]): value for labels, value in cells}


def test_shares_of_a_row_are_suppressed_where_the_count_is(dumping, k12):
    counts = dumped(dumping, "pd.crosstab(df.institution, df.ethnicity, margins=True)", 2)
    shares = dumped(dumping, "pd.crosstab(df.institution, df.ethnicity, normalize='index')", 2)
    for key, share in shares.items():
        if counts[key] is None or counts[(key[0], ALL)] is None:
            assert share is None, key
    outputs = [
        Output(("institution", "ethnicity"), counts),
        Ratios(("institution", "ethnicity"), {key: ((key[0], ALL), value) for key, value in shares.items()}),
    ]
    assert leaks(k12, outputs) == []


def test_normalized_value_counts_follow_their_counts(dumping, truth):
    counts = dumped(dumping, "sub.ethnicity.value_counts()", 1)
    shares = dumped(dumping, "sub.ethnicity.value_counts(normalize=True)", 1)
    assert shares[(truth["ethnicity"],)] is None
    assert {k for k, v in shares.items() if v is None} == {k for k, v in counts.items() if v is None}


def test_a_sum_of_yes_no_values_is_a_count_in_every_form(dumping, k12):
    """agg(['count', 'sum', 'mean']) of a yes/no column shows no small sum, and agrees with the
    crosstab of the same records by that column."""
    table = dumping.run(
        "t = df.groupby('ethnicity').english_learner.agg(['count', 'sum', 'mean'])\n"
        "c = pd.crosstab(df.ethnicity, df.english_learner, margins=True)\n"
        "print(json.dumps({e: [None if pd.isna(t.loc[e, 'sum']) else int(t.loc[e, 'sum']), "
        "None if pd.isna(c.loc[e, True]) else int(c.loc[e, True]), None if pd.isna(t.loc[e, 'mean']) else 1] "
        "for e in t.index}))"
    )
    assert not table.errors, table.errors
    # The printed text, joined: a long line may arrive in one stream message or in several.
    rows = json.loads("".join(table.texts))
    sums = k12.groupby("ethnicity").english_learner.sum()
    for ethnicity, (shown_sum, crosstab_yes, rate) in rows.items():
        assert shown_sum == crosstab_yes  # one decision for one cell
        if 0 < sums[ethnicity] < 10:
            assert shown_sum is None and rate is None


def test_the_rate_of_a_small_group_is_suppressed_not_coded(dumping, truth):
    out = dumping.run(
        "r = pd.crosstab(cell.institution, cell.ethnicity, values=cell.english_learner, aggfunc='mean')\n"
        "print(pd.isna(r.loc[inst, eth]), (inst, eth) in (r.attrs['enclave'].get('codes') or {}))"
    )
    assert "".join(out.texts) == "True False\n", out.all
    assert "<5%" not in dumping.run("r").all


def test_a_protected_table_divided_by_its_margins_is_missing_where_the_counts_are(dumping):
    out = dumping.run(
        "t = pd.crosstab(df.institution, df.ethnicity, margins=True)\n"
        "s = t.div(t['All'], axis=0)\n"
        "same = (s.isna() == (t.isna() | t[['All']].isna().to_numpy())).all().all()\n"
        "print(bool(same), int(s.isna().sum().sum()) > 0)"
    )
    assert "".join(out.texts) == "True True\n", out.all


def test_rates_of_a_yes_no_column_are_rates_of_the_count_table(dumping, k12):
    rates = dumped(dumping, "df.groupby('institution').graduated.mean()", 1)
    counts = dumped(dumping, "pd.crosstab(df.institution, df.graduated, margins=True)", 2)
    for (institution,), rate in rates.items():
        if counts.get((institution, True)) is None or counts.get((institution, ALL)) is None:
            assert rate is None
    graded = k12[k12.graduated.notna()]
    outputs = [
        Output(("institution", "graduated"), counts),
        Ratios(("institution", "graduated"), {(i, True): ((i, ALL), r) for (i,), r in rates.items()}),
    ]
    assert leaks(graded, outputs) == []
