"""The no-code explorer (``notebooks/explorer.ipynb``): the standard metrics behind dropdowns.

A researcher picks a metric, the cohort years, an institution (one of theirs, or the whole
consortium) and a disaggregation; the explorer shows the same tables and charts a report
would (``templates.report``, on the metric module), each protected by the output filter in
the kernel, with the filter's reasons under each table and a summary of what it suppressed
for this view. The choices offered are the ones the researcher's approved uses can answer.
"""

from __future__ import annotations

import ipywidgets as widgets
from IPython.display import Markdown, display

from templates import report
from templates.exceptions import TemplateError
from templates.metrics import ALL, DISAGGREGATIONS, METRICS, Loader, answerable_years

SEGMENT_TABLES = {"k12": "k12_enrollment", "cc": "cc_students"}
EVERY_YEAR = "Every year"
NO_BREAKDOWN = "(none)"


def institutions_of(segment: str, load: Loader) -> list[str]:
    """The codes of the segment's institutions in your uses (labels of a count, nothing more)."""
    rows = load(SEGMENT_TABLES[segment], ["institution"])
    return sorted(str(code) for code in rows.groupby("institution").size().index)


class Explorer:
    """Dropdowns and an output area; ``show()`` draws the current choice."""

    def __init__(self, load: Loader | None = None):
        self.load = report._data_loader() if load is None else load
        self.metric = widgets.Dropdown(
            options=[(m.title, m.name) for m in METRICS.values()],
            description="Metric",
            style={"description_width": "8em"},
        )
        self.years = widgets.Dropdown(description="Cohort years", style={"description_width": "8em"})
        self.institution = widgets.Dropdown(description="Institution", style={"description_width": "8em"})
        self.by = widgets.Dropdown(
            options=[(NO_BREAKDOWN, "")] + [(d.label, d.name) for d in DISAGGREGATIONS.values()],
            description="Break down by",
            style={"description_width": "8em"},
        )
        self.output = widgets.Output()
        self._held = False
        self._choices()
        self.metric.observe(self._metric_changed, names="value")
        for control in (self.years, self.institution, self.by):
            control.observe(lambda _change: self.show(), names="value")

    def _choices(self) -> None:
        """The years and institutions the chosen metric can answer, from your uses."""
        m = METRICS[self.metric.value]
        years = answerable_years(m, self.load)
        self.years.options = [EVERY_YEAR, *years]
        self.years.value = EVERY_YEAR
        one, many = report.SEGMENT_NAMES[m.segment]
        codes = institutions_of(m.segment, self.load)
        self.institution.options = [(f"All consortium {many}", ALL)] + [(f"{one.capitalize()} {c}", c) for c in codes]
        self.institution.value = ALL

    def _metric_changed(self, _change) -> None:
        self._held = True  # new years and institutions: one redraw, not one per dropdown
        try:
            self._choices()
        finally:
            self._held = False
        self.show()

    def show(self) -> None:
        if self._held:
            return
        years = [] if self.years.value == EVERY_YEAR else [self.years.value]
        by = [self.by.value] if self.by.value else []
        self.output.clear_output(wait=True)
        with self.output:
            try:
                view = report.start(self.metric.value, self.institution.value, years, by, self.load)
            except TemplateError as error:
                display(Markdown(f"**Cannot show this choice:** {error}"))
                return
            if by:
                view.breakdowns()
            else:
                view.overview()
            display(Markdown("#### What the filter suppressed here, and why"))
            view.disclosure()

    def widget(self) -> widgets.Widget:
        controls = widgets.VBox([self.metric, self.years, self.institution, self.by])
        return widgets.VBox([controls, self.output])


def explore(load: Loader | None = None) -> Explorer:
    """Show the explorer (in a notebook cell) and draw the first view."""
    explorer = Explorer(load)
    display(explorer.widget())
    explorer.show()
    return explorer


__all__ = ["Explorer", "explore", "institutions_of"]
