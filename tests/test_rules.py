"""The statistics rules (output_filters.rules), as a table of cases, without a kernel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from output_filters import Policy
from output_filters.rules import Cells, contributions, judge

POLICY = Policy()


def one(value, n, **extra) -> tuple[float, dict, str]:
    table, codes, note = judge(Cells(pd.Series([value]), pd.Series([n]), **extra), POLICY)
    return table.iloc[0], codes, note


CASES = [
    # id, value, n, extra, shown?, code
    ("mean-of-9-hidden", 3.2, 9, {}, False, None),
    ("mean-of-10-shown", 3.2, 10, {}, True, None),
    ("rate-0-small-group-coded", 0.0, 50, {"rate": True}, False, "<5%"),
    ("rate-100-small-group-coded", 1.0, 50, {"rate": True}, False, ">95%"),
    ("rate-4-percent-small-group-coded", 0.04, 199, {"rate": True}, False, "<5%"),
    ("rate-97-percent-small-group-coded", 0.97, 120, {"rate": True}, False, ">95%"),
    ("rate-in-band-shown", 0.5, 50, {"rate": True}, True, None),
    ("rate-4-percent-large-group-shown", 0.04, 200, {"rate": True}, True, None),
    ("not-a-rate-never-coded", 0.01, 50, {}, True, None),
    ("rate-of-9-hidden-not-coded", 0.0, 9, {"rate": True}, False, None),
]


@pytest.mark.parametrize(("value", "n", "extra", "shown", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_statistics_rules(value, n, extra, shown, code):
    result, codes, note = one(value, n, **extra)
    assert pd.notna(result) == shown
    assert codes.get(0) == code
    assert bool(note) == (not shown)


DOMINANCE = [
    # id, contributions, hidden?
    ("one-contributor-dominates", [500, 5, 5, 5, 5, 5, 5, 5, 5, 5], True),
    ("two-contributors-over-90-percent", [300, 300, 8, 8, 8, 8, 8, 8, 2, 2], True),
    ("p-percent-rest-small", [200, 30, 4, 3, 3, 2, 2, 2, 2, 1], True),
    ("spread-out", [30, 28, 25, 25, 24, 22, 21, 20, 20, 18], False),
]


@pytest.mark.parametrize(("values", "hidden"), [c[1:] for c in DOMINANCE], ids=[c[0] for c in DOMINANCE])
def test_dominance_of_magnitude_cells(values, hidden):
    tops, totals = contributions(pd.Series(values, dtype=float), np.zeros(len(values), dtype=int), 1, 2)
    cells = Cells(
        pd.Series([float(sum(values))]),
        pd.Series([len(values)]),
        tops=[pd.Series(t) for t in tops],
        totals=pd.Series(totals),
    )
    table, _codes, note = judge(cells, POLICY)
    assert pd.isna(table.iloc[0]) == hidden
    assert ("dominated" in note) == hidden


def test_contributions_per_group():
    values = pd.Series([5.0, 1.0, 9.0, 3.0, 7.0])
    groups = np.array([0, 0, 1, 1, 1])
    (first, second), totals = contributions(values, groups, 2, 2)
    assert first.tolist() == [5.0, 9.0] and second.tolist() == [1.0, 7.0]
    assert totals.tolist() == [6.0, 19.0]


def test_rules_follow_the_policy():
    strict = Policy(threshold=20, rate_band=(10.0, 90.0), rate_band_below=1000)
    table, codes, _note = judge(
        Cells(pd.Series([0.08, 3.0]), pd.Series([500, 15]), rate=pd.Series([True, False])), strict
    )
    assert codes == {0: "<10%"} and pd.isna(table).tolist() == [True, True]


DOMINANCE.append(("signs-do-not-hide-a-dominant-pair", [900, -850, 5, 5, 5, 5, 5, 5, 5, 5], True))


@pytest.mark.parametrize(("values", "hidden"), [DOMINANCE[-1][1:]], ids=[DOMINANCE[-1][0]])
def test_dominance_counts_contributions_by_their_size(values, hidden):
    """+900 and −850 make a sum of 90 whose every unit comes from two records: judged on |values|."""
    tops, totals = contributions(pd.Series(values, dtype=float), np.zeros(len(values), dtype=int), 1, 2)
    cells = Cells(
        pd.Series([float(sum(values))]),
        pd.Series([len(values)]),
        tops=[pd.Series(t) for t in tops],
        totals=pd.Series(totals),
    )
    table, _codes, note = judge(cells, POLICY)
    assert pd.isna(table.iloc[0]) == hidden and "dominated" in note


# Every rule by the kind of value it judges: one row per rule (tests/test_filter_matrix.py checks it).
RULE_CASES = {
    "small count": ("count", [3.0, 0.0, 12.0], [10, 10, 10], [True, False, False]),
    "small group": ("statistic", [2.5, 2.5], [9, 10], [True, False]),
    "rate band": ("rate", [0.02, 0.5], [50, 50], [True, False]),
    "dominance": ("statistic", [900.0], [10], [True]),
    "histogram bins": ("bins", [12.0, 3.0], [12, 3], "refused"),
    "extremes": ("extreme", [1.0], [100], "refused"),
    "record-level data": ("records", [1.0], [100], "refused"),
}


@pytest.mark.parametrize("rule", list(RULE_CASES), ids=list(RULE_CASES))
def test_every_rule_judges_its_kind_of_value(rule):
    from output_filters.exceptions import DisclosureError
    from output_filters.rules import RULES

    kind, values, n, expected = RULE_CASES[rule]
    extra = {}
    if rule == "dominance":
        extra = {"tops": [pd.Series([880.0]), pd.Series([10.0])], "totals": pd.Series([900.0])}
    cells = Cells(pd.Series(values), pd.Series(n), kind=kind, **extra)
    (chosen,) = [r for r in RULES if r.name == rule]
    if expected == "refused":
        with pytest.raises(DisclosureError) as refusal:
            judge(cells, POLICY, [chosen])
        assert refusal.value.rule == rule
        return
    table, _codes, note = judge(cells, POLICY, [chosen])
    assert pd.isna(table).tolist() == expected and note
