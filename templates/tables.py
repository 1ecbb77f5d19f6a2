"""The tables of a report: a metric's cohort broken down, every aggregate made by pandas.

``compute`` makes a report's tables in one fixed order. In the secure kernel each is protected
by the output filter when it is made (small counts suppressed, enough others to protect the
totals and the tables shown before, rates only beside shown counts); the templates and the
explorer display exactly these tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from templates.exceptions import MetricError
from templates.metrics import ALL, DISAGGREGATIONS, Metric
from templates.periods import period_order


@dataclass
class Breakdown:
    """The tables of one breakdown of a cohort, as the filter protected them."""

    by: str | None  # a disaggregation, or None: the whole cohort by period
    students: pd.DataFrame | pd.Series  # the denominators: the cohort's size (a crosstab with margins when by)
    rates: dict[str, pd.DataFrame | pd.Series]  # per outcome: the share (0-1) with the outcome
    counts: pd.DataFrame | None = None  # whole cohort only: numerators by period × outcome
    table: pd.DataFrame | None = None  # whole cohort only: rates by period × outcome


@dataclass
class Results:
    metric: Metric
    institution: str
    years: tuple[str, ...]
    periods: list[str]  # in the order reports show them
    breakdowns: list[Breakdown]


def check_disaggregations(by: Sequence[str]) -> list[str]:
    """``by`` as a list, or a MetricError naming the unknown ones and the choices."""
    unknown = [name for name in by if name not in DISAGGREGATIONS]
    if unknown:
        raise MetricError(
            f"parameter disaggregations: {', '.join(map(repr, unknown))} is not a disaggregation; "
            f"choose from {', '.join(DISAGGREGATIONS)}"
        )
    return list(dict.fromkeys(by))


def scope(cohort: pd.DataFrame, institution: str) -> pd.DataFrame:
    """The cohort of one institution (a subset of the same records), or all of it for ``ALL``."""
    return cohort if institution == ALL else cohort[cohort["institution"] == institution]


def compute(metric: Metric, cohort: pd.DataFrame, institution: str, by: Sequence[str], years: Sequence[str]) -> Results:
    """Every table of a report, made in a fixed order: the whole cohort by period, then each
    disaggregation in the order given.

    Counts come first and rates after them, so each rate is one the filter derives from a
    count table it has decided: a rate is shown only where its count and its denominator are.
    """
    by = check_disaggregations(by)
    rows = scope(cohort, institution)
    periods = rows.groupby("period")
    students = periods.size()
    if students.empty:
        raise MetricError(
            f"{metric.title}: no {metric.unit} in the cohort for institution {institution!r}; check the institution "
            "code and the years (`enclave report list` names the parameters)"
        )
    columns = [o.column for o in metric.outcomes]
    counts = periods[columns].sum()
    table = periods[columns].mean()
    overall = Breakdown(None, students, rates={c: table[c] for c in columns}, counts=counts, table=table)
    breakdowns = [overall]
    for name in by:
        table = pd.crosstab(rows[name], rows["period"], margins=True)
        rates = {
            c: pd.crosstab(rows[name], rows["period"], values=rows[c], aggfunc="mean", margins=True) for c in columns
        }
        breakdowns.append(Breakdown(name, table, rates))
    return Results(metric, institution, tuple(years), period_order(students.index), breakdowns)
