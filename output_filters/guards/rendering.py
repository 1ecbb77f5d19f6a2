"""Every way pandas turns a frame into text or HTML goes through one judgement.

``__repr__`` (so ``print``, ``str``, f-strings and cell results), ``_repr_html_`` (rich
display), ``to_string``, ``to_html`` and ``to_markdown`` of DataFrames and Series are wrapped:

- record-level data renders as a one-line notice saying why it is blocked and what to do;
- a protected aggregate renders with its suppressed cells as the policy's mark, and its
  repr and HTML end with the reason ("3 cells suppressed: fewer than 10 records; ...");
- anything else renders as pandas would.

Exports (``to_csv``, ``to_json``, ``to_parquet``, ...) of record-level data raise
``DisclosureError``: a file in the workspace would show the records in JupyterLab.
"""

from __future__ import annotations

import html
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from kernels import events
from kernels.marks import PROTECTED, RECORD, level_of, mark_of
from output_filters.exceptions import DisclosureError
from output_filters.guards import registry
from output_filters.policy import Policy
from output_filters.session import FilterSession

TEXT_METHODS = ("__repr__", "to_string", "to_markdown")
HTML_METHODS = ("_repr_html_", "to_html")
# Writing records out (to a file, or as text to print) would take them past the filter:
# JupyterLab opens CSV and JSON files in its viewers. Aggregates may be written.
EXPORT_METHODS = (
    "to_csv",
    "to_json",
    "to_excel",
    "to_parquet",
    "to_pickle",
    "to_feather",
    "to_orc",
    "to_stata",
    "to_hdf",
    "to_sql",
    "to_latex",
    "to_xml",
    "to_clipboard",
)
EXPORT_REASON = (
    "record-level data stays in the kernel: it cannot be written to files or text. "
    "Write an aggregate instead (counts, rates, means), which the filter has checked."
)


def blocked_notice(obj: pd.DataFrame | pd.Series, policy: Policy, *, as_html: bool = False) -> str:
    """The one-line explanation shown instead of record-level data."""
    mark = mark_of(obj) or {}
    rows = len(obj.index)
    count = f"{rows:,}" if rows == 0 or rows >= policy.threshold else f"fewer than {policy.threshold}"
    shape = f"{count} rows × {obj.shape[1]} columns" if obj.ndim == 2 else f"{count} values"
    source = f" from {mark['source']}" if mark.get("source") else ""
    text = (
        f"Blocked: record-level data ({shape}{source}) is never shown. Aggregate it first, "
        "e.g. df.groupby('ethnicity').size() or pd.crosstab(df.a, df.b); "
        "df.shape, df.columns and df.dtypes are available."
    )
    if as_html:
        return f'<div class="enclave-blocked" style="color:#8a1c1c;font-weight:600">{html.escape(text)}</div>'
    return text


def _audit_blocked(obj: Any, policy: Policy) -> None:
    """The block in the audit log: the rule and the table's shape (small row counts as a bound)."""
    rows = len(obj.index)
    events.record(
        "output.blocked",
        rule="record-level data",
        rows=rows if rows == 0 or rows >= policy.threshold else f"fewer than {policy.threshold}",
        columns=obj.shape[1] if obj.ndim == 2 else 1,
        source=(mark_of(obj) or {}).get("source", ""),
    )


def _shown(obj: Any, policy: Policy) -> Any:
    """A plain copy of a protected object: suppressed cells as the mark, coded cells as their code."""
    codes = (mark_of(obj) or {}).get("codes") or {}
    if isinstance(obj, pd.Series):
        frame = obj.to_frame()
        frame.attrs = {"enclave": {"codes": {(label, frame.columns[0]): code for label, code in codes.items()}}}
        return _shown(frame, policy).iloc[:, 0].rename(obj.name)
    out = obj.copy()
    out.attrs = {}
    precision = pd.get_option("display.precision")
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        missing = column.isna()
        if missing.any():
            name = out.columns[position]
            values = [
                codes.get((row, name), policy.mark)
                if gone
                else (round(value, precision) if isinstance(value, float) else value)
                for row, value, gone in zip(out.index, column.astype(object), missing, strict=True)
            ]
            out.isetitem(position, pd.Series(values, index=out.index, dtype=object))
    return out


def _note(obj: Any, policy: Policy) -> str:
    mark = mark_of(obj) or {}
    note = mark.get("note", "")
    if not note or not np.asarray(pd.isna(obj)).any():
        return ""
    return f"{policy.mark} {note}"


def render(policy: Policy, as_html: bool, original, self, *args, **kwargs):
    """Render ``self``: a notice for records, the mark in suppressed cells of protected tables."""
    name = original.__name__
    level = level_of(self)
    if level == RECORD:
        notice = blocked_notice(self, policy, as_html=as_html)
        if name == "__repr__":  # once per display (the HTML form is asked for too)
            _audit_blocked(self, policy)
        buf = kwargs.get("buf") or (args[0] if args and hasattr(args[0], "write") else None)
        if buf is not None:
            buf.write(notice)
            return None
        return notice
    if level != PROTECTED:
        return original(self, *args, **kwargs)
    rendered = original(_shown(self, policy), *args, **kwargs)
    if rendered is None or name not in ("__repr__", "_repr_html_"):
        return rendered
    note = _note(self, policy)
    if not note:
        return rendered
    if name == "__repr__":
        suppressed = int(np.asarray(pd.isna(self)).sum())
        events.record("output.suppressed", rule=note, shape=list(self.shape), cells=suppressed)
    if as_html:
        return f'{rendered}<p class="enclave-note"><em>{html.escape(note)}</em></p>'
    return f"{rendered}\n{note}"


def _refuse_export(original, self, *args, **kwargs):
    raise DisclosureError(EXPORT_REASON, rule="record-level data")


def _marked(self, *args, **kwargs) -> bool:
    return level_of(self) in (RECORD, PROTECTED)


def _records(self, *args, **kwargs) -> bool:
    return level_of(self) == RECORD


def style(policy: Policy, as_html: bool, original, self, *args, **kwargs):
    """A Styler renders its data: the same judgement, with the mark as its missing-value text."""
    name = original.__name__
    level = level_of(self.data)
    if level == RECORD:
        if name.startswith("to_") and name not in ("to_html", "to_string"):
            raise DisclosureError(EXPORT_REASON, rule="record-level data")
        return blocked_notice(self.data, policy, as_html=as_html)
    if level == PROTECTED:
        missing = [c for c in self.data.columns if self.data[c].isna().any()]
        if missing:
            self.format(na_rep=policy.mark, subset=missing)
    return original(self, *args, **kwargs)


def install(session: FilterSession) -> None:
    """Wrap the rendering and export methods of DataFrame, Series and Styler (idempotent)."""
    policy = session.policy
    for cls in (pd.DataFrame, pd.Series):
        for name in TEXT_METHODS:
            registry.guard(cls, name, partial(render, policy, False), when=_marked)
        for name in HTML_METHODS:
            if hasattr(cls, name):
                registry.guard(cls, name, partial(render, policy, True), when=_marked)
        for name in EXPORT_METHODS:
            if hasattr(cls, name):
                registry.guard(cls, name, _refuse_export, when=_records)
    for name, as_html in (
        ("_repr_html_", True),
        ("to_html", True),
        ("to_string", False),
        ("to_latex", False),
        ("_repr_latex_", False),
        ("to_excel", False),
    ):
        registry.guard(Styler, name, partial(style, policy, as_html))
