"""The disclosure rules, as a registry of small rule objects with one interface.

Every value the filter is about to publish from record-level data arrives as ``Cells``: the
computed values with, cell by cell, the number of records behind them and what kind of value
it is — a count, a statistic (mean, median, a sum of units...), a rate or share, the bins of a
histogram, a single student's value (an extreme), or records themselves. Each rule looks at
the cells it applies to and hides some, codes some, or refuses the whole output; ``judge``
applies them all and says why in one line. A new rule is one class here plus its tests.

Counts have a second stage, secondary suppression (``output_filters.engine``): the small-count
rule here marks the primaries, the engine protects them against every total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from output_filters.exceptions import DisclosureError
from output_filters.policy import Policy

Table = pd.DataFrame | pd.Series
KINDS = ("count", "statistic", "rate", "bins", "extreme", "records")


@dataclass
class Cells:
    """A computed table and what the rules need to know about each of its cells."""

    values: Table
    n: Table  # records behind each value, aligned with ``values``
    rate: bool | pd.Series = False  # shares of yes/no (means of booleans, normalized counts); per cell if a mask
    tops: list[Table] = field(default_factory=list)  # largest absolute contributions, largest first
    totals: Table | None = None  # sum of the absolute contributions (magnitude columns)
    kind: str = "statistic"  # see KINDS


@dataclass
class Verdict:
    hidden: np.ndarray  # True where the value is suppressed
    codes: dict = field(default_factory=dict)  # cell label -> shown text, e.g. "<5%"
    note: str = ""
    refusal: str | None = None  # the whole output is refused, for this reason


class Rule(Protocol):
    name: str
    kinds: tuple[str, ...]

    def decide(self, cells: Cells, policy: Policy) -> Verdict: ...


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def _array(table, shape) -> np.ndarray:
    return np.asarray(pd.DataFrame(table).fillna(0), dtype=float).reshape(shape)


def small(n, policy: Policy):
    """Whether a group of ``n`` records is too small for a statistic (the small-group rule)."""
    return np.asarray(n) < policy.threshold


def small_count(n, policy: Policy):
    """Whether a count of ``n`` records is suppressed by the small-count rule (0 < n < threshold)."""
    n = np.asarray(n)
    return (n > 0) & (n < policy.threshold)


class SmallCount:
    """A count cell of 0 < n < threshold records is suppressed (a primary)."""

    name = "small count"
    kinds = ("count",)

    def decide(self, cells: Cells, policy: Policy) -> Verdict:
        values = _array(cells.values, np.shape(cells.values))
        hidden = small_count(values, policy)
        count = int(hidden.sum())
        note = f"{_plural(count, 'cell')} suppressed: fewer than {policy.threshold} records" if count else ""
        return Verdict(hidden, note=note)


class SmallGroup:
    """A statistic of fewer than threshold records is suppressed."""

    name = "small group"
    kinds = ("statistic", "rate")

    def decide(self, cells: Cells, policy: Policy) -> Verdict:
        n = _array(cells.n, np.shape(cells.values))
        hidden = small(n, policy) & ~np.asarray(pd.isna(cells.values))
        count = int(hidden.sum())
        note = f"{_plural(count, 'value')} suppressed: fewer than {policy.threshold} records" if count else ""
        return Verdict(hidden, note=note)


class RateBand:
    """Rates of groups under ``rate_band_below`` records outside ``rate_band`` are coded."""

    name = "rate band"
    kinds = ("statistic", "rate")

    def decide(self, cells: Cells, policy: Policy) -> Verdict:
        shape = np.shape(cells.values)
        rate = np.broadcast_to(np.asarray(cells.rate, dtype=bool).reshape(-1 if np.ndim(cells.rate) else ()), shape)
        if cells.kind == "rate":
            rate = np.ones(shape, dtype=bool)
        if not rate.any():
            return Verdict(np.zeros(shape, dtype=bool))
        low, high = (bound / 100 for bound in policy.rate_band)
        values = np.asarray(pd.DataFrame(cells.values).astype(float), dtype=float).reshape(shape)
        n = _array(cells.n, shape)
        banded = rate & (n < policy.rate_band_below) & ~np.isnan(values)
        below, above = banded & (values < low), banded & (values > high)
        codes = {}
        for mask, text in ((below, f"<{policy.rate_band[0]:g}%"), (above, f">{policy.rate_band[1]:g}%")):
            for position in zip(*np.nonzero(mask), strict=True):
                codes[_label(cells.values, position)] = text
        hidden = below | above
        count = int(hidden.sum())
        note = (
            f"{_plural(count, 'rate')} of groups under {policy.rate_band_below} records coded "
            f"outside {policy.rate_band[0]:g}–{policy.rate_band[1]:g} %"
            if count
            else ""
        )
        return Verdict(hidden, codes, note)


class Dominance:
    """Magnitude cells dominated by their largest contributions (NK and p% rules).

    Contributions count by their absolute value: a cell of +900 and −850 is dominated by its
    two records, whatever their signs.
    """

    name = "dominance"
    kinds = ("statistic",)

    def decide(self, cells: Cells, policy: Policy) -> Verdict:
        shape = np.shape(cells.values)
        if cells.totals is None or not cells.tops:
            return Verdict(np.zeros(shape, dtype=bool))
        total = _array(cells.totals, shape)
        tops = [_array(top, shape) for top in cells.tops]
        top_n = sum(tops[: policy.dominance_n])
        nk = top_n > policy.dominance_k / 100 * total
        rest = total - tops[0] - (tops[1] if len(tops) > 1 else 0)
        p_rule = rest < policy.p_percent / 100 * tops[0]
        hidden = (total > 0) & (nk | p_rule) & ~np.asarray(pd.isna(cells.values))
        count = int(hidden.sum())
        note = (
            f"{_plural(count, 'value')} suppressed: dominated by {policy.dominance_n} contributions "
            f"(more than {policy.dominance_k:g} %) or with the rest under {policy.p_percent:g} % of the largest"
            if count
            else ""
        )
        return Verdict(hidden, note=note)


class HistogramBins:
    """A histogram of records is drawn only if no bin holds 0 < n < threshold records."""

    name = "histogram bins"
    kinds = ("bins",)

    def decide(self, cells: Cells, policy: Policy) -> Verdict:
        values = _array(cells.values, np.shape(cells.values))
        hidden = small_count(values, policy)
        count = int(hidden.sum())
        note = (
            f"{_plural(count, 'bin')} of fewer than {policy.threshold} records; use fewer, wider bins "
            "(bins=...) or plot an aggregate"
        )
        return Verdict(hidden, note=note if count else "", refusal=note if count else None)


class Extremes:
    """Minimum, maximum, first, last, the n-th value, a mode of numbers: one student's value."""

    name = "extremes"
    kinds = ("extreme",)
    reason = (
        "the minimum, maximum, first and last values of record-level data are single students' "
        "values and are never shown; use quantiles (e.g. .quantile(0.1)) or describe() instead"
    )

    def decide(self, cells: Cells, policy: Policy) -> Verdict:
        return Verdict(np.ones(np.shape(cells.values), dtype=bool), refusal=self.reason)


class RecordLevel:
    """Record-level data itself is never shown, written out or turned into plain values."""

    name = "record-level data"
    kinds = ("records",)
    reason = (
        "record-level data cannot be turned into plain Python values (lists, dicts, single values, "
        "loops over rows): they would show individual students. Aggregate it first."
    )

    def decide(self, cells: Cells, policy: Policy) -> Verdict:
        return Verdict(np.ones(np.shape(cells.values), dtype=bool), refusal=self.reason)


RULES: list[Rule] = [SmallCount(), SmallGroup(), RateBand(), Dominance(), HistogramBins(), Extremes(), RecordLevel()]


def judge(cells: Cells, policy: Policy, rules: list[Rule] | None = None) -> tuple[Table, dict, str]:
    """Apply every rule for the cells' kind: (the table with hidden cells missing, codes for
    shown text, the reason); raises ``DisclosureError`` when a rule refuses the output."""
    hidden = np.zeros(np.shape(cells.values), dtype=bool)
    codes: dict = {}
    notes = []
    for rule in RULES if rules is None else rules:
        if cells.kind not in rule.kinds:
            continue
        verdict = rule.decide(cells, policy)
        if verdict.refusal:
            raise DisclosureError(verdict.refusal, rule=rule.name)
        fresh = verdict.hidden & ~hidden
        if fresh.any():
            notes.append(verdict.note)
            # a code only for cells this rule hides first: a small group's rate stays suppressed
            for position in zip(*np.nonzero(fresh), strict=True):
                label = _label(cells.values, position)
                if label in verdict.codes:
                    codes[label] = verdict.codes[label]
        hidden |= verdict.hidden
    values = cells.values
    if isinstance(values, pd.DataFrame):
        table = values.mask(pd.DataFrame(hidden, index=values.index, columns=values.columns))
    else:
        table = values.mask(pd.Series(hidden.reshape(len(values)), index=values.index))
    return table, codes, "; ".join(note for note in notes if note)


def _label(values: Table, position: tuple) -> tuple | object:
    if isinstance(values, pd.DataFrame):
        return (values.index[position[0]], values.columns[position[1]])
    return values.index[position[0]]


def contributions(values: pd.Series, groups: np.ndarray, count: int, keep: int) -> tuple[list, np.ndarray]:
    """The ``keep`` largest absolute values and the absolute total of each group (groups 0..count-1)."""
    frame = pd.DataFrame({"group": groups, "value": pd.to_numeric(values, errors="coerce").abs().to_numpy()})
    frame = frame[(frame.group >= 0) & frame.value.notna()]
    ordered = frame.sort_values(["group", "value"], ascending=[True, False], kind="stable")
    rank = ordered.groupby("group", sort=False).cumcount().to_numpy()
    tops = []
    for place in range(keep):
        top = np.zeros(count)
        chosen = ordered[rank == place]
        top[chosen.group.to_numpy()] = chosen.value.to_numpy()
        tops.append(top)
    totals = np.bincount(frame.group.to_numpy(), weights=frame.value.to_numpy(), minlength=count)
    return tops, totals
