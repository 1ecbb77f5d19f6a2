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

from output_filters.exceptions import DisclosureError
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

    def refused(self) -> list[Refused]:
        """The tables the filter refused (kept with their reasons)."""
        found = []
        for part in self.breakdowns:
            found += [
                t for t in (part.students, part.counts, part.table, *part.rates.values()) if isinstance(t, Refused)
            ]
        return list(dict.fromkeys(found))


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
    """Every table of a report, made in a fixed order: each disaggregation in the order given,
    then the whole cohort by period.

    The finest tables come first: a disaggregation's rates (the filter decides them from the
    count table group × period × outcome), then its counts (group × period), then the whole
    cohort's rates, counts and sizes. A coarser table published after a finer one takes more
    suppressions itself if it must; a finer one published after a coarse one may find no
    pattern of its own cells that protects, and be refused. Every rate is one the filter derives
    from a count table it has decided. A table the filter refuses anyway is kept as a
    ``Refused`` with the filter's reason, and the report goes on.
    """
    by = check_disaggregations(by)
    rows = scope(cohort, institution)
    periods = rows.groupby("period")
    if len(rows.index) == 0:
        raise MetricError(
            f"{metric.title}: no {metric.unit} in the cohort for institution {institution!r}; check the institution "
            "code and the years (`enclave report list` names the parameters)"
        )
    columns = [o.column for o in metric.outcomes]
    breakdowns = []
    for name in by:
        rates = {
            c: attempt(
                lambda name=name, c=c: pd.crosstab(
                    rows[name], rows["period"], values=rows[c], aggfunc="mean", margins=True
                )
            )
            for c in columns
        }
        table = attempt(lambda name=name: pd.crosstab(rows[name], rows["period"], margins=True))
        breakdowns.append(Breakdown(name, table, rates))
    table = attempt(lambda: periods[columns].mean())
    counts = attempt(lambda: periods[columns].sum())
    students = attempt(periods.size)
    rates = {c: table if isinstance(table, Refused) else table[c] for c in columns}
    overall = Breakdown(None, students, rates=rates, counts=counts, table=table)
    shown = students if not isinstance(students, Refused) else counts
    labels = [] if isinstance(shown, Refused) else list(shown.index)
    return Results(metric, institution, tuple(years), period_order(labels), [overall, *breakdowns])


@dataclass(frozen=True)
class Refused:
    """A table the output filter refused to publish, with its reason."""

    reason: str


def attempt(make):
    """``make()``, or a ``Refused`` with the filter's reason when it refuses the table."""
    try:
        return make()
    except DisclosureError as error:
        return Refused(str(error))
