"""What a standard report shows, section by section: scope, methods, tables, charts, disclosure.

Each template in this folder is a short notebook: its ``parameters`` cell, then one call per
section (``start``, ``Report.methods``, ``Report.overview``, ``Report.breakdowns``,
``Report.disclosure``). The metric itself is defined once in ``templates.metrics`` and its
tables made by ``templates.tables.compute``; this module only lays them out. Nothing here
suppresses anything: in the secure kernel every table is protected by the output filter when
it is made, and charts draw the values the filter left, so a suppressed value is a gap with a
note under the chart, never a zero. The threshold is the policy's (``load_policy``), the one
the kernel's filter applies; no parameter changes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from IPython.display import Markdown, display

from output_filters.policy import Policy, load_policy
from output_filters.summary import decision_count, disclosure_summary
from templates.exceptions import MetricError
from templates.metrics import ALL, DISAGGREGATIONS, METRICS, Loader, Metric, answerable_years
from templates.tables import Breakdown, Refused, Results, compute

SEGMENT_NAMES = {
    "k12": ("district", "districts"),
    "cc": ("college", "colleges"),
    "univ": ("university", "universities"),
}
ALL_LABEL = "All"  # the margins of the breakdown tables


def _data_loader() -> Loader:
    from kernels import data

    return lambda table, columns: data.load(table, columns)


def scope_text(metric: Metric, institution: str) -> str:
    one, many = SEGMENT_NAMES[metric.segment]
    return f"all consortium {many}" if institution == ALL else f"{one} {institution}"


@dataclass
class Report:
    metric: Metric
    institution: str
    years: list[str]
    disaggregations: list[str]
    policy: Policy
    results: Results
    first_decision: int  # the filter's decisions from here on are this report's

    # ---- sections ---------------------------------------------------------------------------

    def methods(self) -> None:
        m = self.metric
        lines = [
            f"**Cohort (denominator):** {m.cohort}.",
            "",
            *[f"**Numerator — {o.label}:** {o.numerator}." for o in m.outcomes],
            "",
            f"**Rate:** numerator ÷ cohort, in percent, for each {m.period.lower()}. Counts are of {m.unit}.",
        ]
        if self.disaggregations:
            lines += ["", "**Disaggregations:**", ""]
            for name in self.disaggregations:
                source = m.sources.get(name, "the student's record of the cohort year")
                lines.append(f"- {DISAGGREGATIONS[name].label}: from {source}.")
        if m.notes:
            lines += ["", *[f"*{note}*" for note in m.notes]]
        lines += [
            "",
            f"**Disclosure rules:** counts of fewer than {self.policy.threshold} {m.unit} are suppressed (the "
            "consortium policy's threshold), with further cells suppressed so that totals cannot give them back; "
            "a rate is shown only where its count and its group are. Suppressed values are shown as "
            f"`{self.policy.mark}` in tables and as gaps in charts.",
        ]
        display(Markdown("\n".join(lines)))

    def overview(self) -> None:
        """The whole cohort by period: the cohort's size, each outcome's count and rate, a chart."""
        m, whole = self.metric, self.results.breakdowns[0]
        labels = {o.column: o.label for o in m.outcomes}
        order = self.results.periods
        display(Markdown(f"### Rate by {m.period.lower()} (%)"))
        show(whole.table, lambda t: (t * 100).round(1).reindex(order).rename(columns=labels).rename_axis(m.period))
        display(Markdown(f"### {m.unit.capitalize()} in the cohort and with each outcome"))
        show(whole.students, lambda t: t.reindex(order).rename(f"Cohort ({m.unit})").rename_axis(m.period).to_frame())
        show(whole.counts, lambda t: t.reindex(order).rename(columns=labels).rename_axis(m.period))
        if not isinstance(whole.table, Refused):
            chart_rates(
                {labels[c]: _values(whole.rates[c].reindex(order) * 100) for c in whole.rates},
                order,
                f"{m.title}, {scope_text(m, self.institution)}",
                m.period,
                self.policy.mark,
            )

    def breakdowns(self) -> None:
        """One section per disaggregation: rates and counts by group and period, and a chart."""
        m = self.metric
        for part in self.results.breakdowns[1:]:
            label = DISAGGREGATIONS[part.by].label
            display(Markdown(f"## By {label.lower()}"))
            columns = [*self.results.periods, ALL_LABEL]
            for outcome in m.outcomes:
                display(Markdown(f"### {outcome.label}: rate (%) by {label.lower()} and {m.period.lower()}"))
                show(
                    part.rates[outcome.column],
                    lambda t, columns=columns, label=label: (
                        (t * 100).round(1).reindex(columns=columns).rename_axis(index=label, columns=m.period)
                    ),
                )
            display(Markdown(f"### {m.unit.capitalize()} in the cohort by {label.lower()}"))
            show(
                part.students,
                lambda t, columns=columns, label=label: t.reindex(columns=columns).rename_axis(
                    index=label, columns=m.period
                ),
            )
            for outcome in m.outcomes:
                rate = part.rates[outcome.column]
                if isinstance(rate, Refused):
                    continue
                groups = [g for g in rate.index if g != ALL_LABEL]
                chart_rates(
                    {p: _values(rate[p].reindex(groups) * 100) for p in self.results.periods if p in rate.columns},
                    groups,
                    f"{outcome.label} by {label.lower()}, {scope_text(m, self.institution)}",
                    label,
                    self.policy.mark,
                )

    def disclosure(self) -> None:
        """What the output filter suppressed in this report, from its own record."""
        summary = disclosure_summary(self.first_decision)
        lines = [summary.markdown()]
        refused = self.results.refused()
        if refused:
            lines.append(f"- {len(refused)} table(s) refused by the filter and left out, each with its reason above.")
        display(Markdown("\n".join(lines)))


def start(
    metric: str, institution: str, years: Sequence[str], disaggregations: Sequence[str], load: Loader | None = None
) -> Report:
    """Build the report's tables (all of them, in a fixed order) and show its scope."""
    if metric not in METRICS:
        raise MetricError(f"no metric named {metric!r}; metrics: {', '.join(METRICS)}")
    m = METRICS[metric]
    load = _data_loader() if load is None else load
    available = answerable_years(m, load)
    chosen = list(years) or available
    outside = [y for y in chosen if y not in available]
    if outside:
        raise MetricError(
            f"parameter years: {', '.join(outside)} outside the data for {m.title.lower()}; "
            f"the data answer {', '.join(available) or 'no year'}"
        )
    cohort = m.build(load, chosen, institution)  # the institution's cohort only
    first = decision_count()  # the filter's decisions from here on are this report's tables
    results = compute(m, cohort, institution, list(disaggregations), chosen)
    report = Report(m, institution, chosen, list(disaggregations), load_policy(), results, first)
    by = ", ".join(DISAGGREGATIONS[d].label.lower() for d in disaggregations) or "none"
    display(
        Markdown(
            f"**Scope:** {scope_text(m, institution)}; {m.period.lower()} {', '.join(chosen)}. "
            f"**Disaggregations:** {by}. **Threshold:** {report.policy.threshold} (the consortium policy)."
        )
    )
    return report


# ---- helpers ------------------------------------------------------------------------------------


def show(table, layout) -> None:
    """Display ``layout(table)``, or the filter's reason where it refused the table."""
    if isinstance(table, Refused):
        display(Markdown(f"*Not shown: the output filter refused this table.* {table.reason}"))
    else:
        display(layout(table))


def _values(series: pd.Series) -> list[float]:
    """A protected series' values as floats, suppressed ones as NaN (the chart's gaps)."""
    return [float("nan") if pd.isna(v) else float(v) for v in series.tolist()]


def chart_rates(series: dict[str, list[float]], categories: list[str], title: str, axis: str, mark: str) -> None:
    """Grouped bars, one group per category; a suppressed value is a gap marked ``mark``, with a
    note under the chart (never a bar of zero)."""
    import matplotlib.pyplot as plt

    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(categories) * max(len(series), 1) ** 0.5 + 2), 3.6))
    gaps = 0
    for i, values in enumerate(series.values()):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(categories))]
        shown = [(x, v) for x, v in zip(xs, values, strict=True) if v == v]
        if shown:
            ax.bar([x for x, _ in shown], [v for _, v in shown], width, color=f"C{i}")
        for x, v in zip(xs, values, strict=True):
            if v != v:
                gaps += 1
                ax.annotate(mark, (x, 0), ha="center", va="bottom", fontsize=11, color="#8a1c1c")
    turned = len(categories) > 4
    ax.set_xticks(range(len(categories)), [str(c) for c in categories])
    if turned:
        ax.tick_params(axis="x", labelrotation=30)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("Rate (%)")
    ax.set_xlabel(axis)
    ax.set_title(title, fontsize=11)
    if len(series) > 1:
        handles = [plt.Rectangle((0, 0), 1, 1, color=f"C{i}") for i in range(len(series))]
        ax.legend(handles, list(series), fontsize=8, ncols=min(len(series), 4))
    if gaps:
        fig.text(
            0.01,
            0.01,
            f"{mark} no bar: the value is suppressed by the disclosure rules ({gaps} of them).",
            fontsize=8,
            color="#8a1c1c",
        )
    fig.tight_layout(rect=(0, 0.05 if gaps else 0, 1, 1))
    plt.show()
    plt.close(fig)
    if gaps:
        display(Markdown(f"*Chart: {gaps} suppressed value(s) drawn as gaps marked* `{mark}`*, not as zeros.*"))


__all__ = ["Breakdown", "Report", "chart_rates", "scope_text", "start"]
