"""The disclosure rules for statistics, as a registry of small rule objects.

Every statistic a researcher computes from record-level data (a mean, a rate, a sum of
units...) arrives here as ``Cells``: the computed values with, cell by cell, the number of
records behind them and, for magnitude columns, the largest contributions and the total. Each
rule looks at the cells and hides some of them, or codes them; ``judge`` applies them all and
says why in one line. A new rule is one class here plus its tests. Count tables have their own
stage (``output_filters.engine.suppress``: primary and secondary suppression).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from output_filters.policy import Policy

Table = pd.DataFrame | pd.Series


@dataclass
class Cells:
    """A computed table and what the rules need to know about each of its cells."""

    values: Table
    n: Table  # records behind each value, aligned with ``values``
    rate: bool | pd.Series = False  # shares of yes/no (means of booleans, normalized counts); per cell if a mask
    tops: list[Table] = field(default_factory=list)  # largest contributions, largest first
    totals: Table | None = None  # sum of the contributions (magnitude columns)


@dataclass
class Verdict:
    hidden: np.ndarray  # True where the value is suppressed
    codes: dict = field(default_factory=dict)  # cell label -> shown text, e.g. "<5%"
    note: str = ""


class Rule(Protocol):
    def decide(self, cells: Cells, policy: Policy) -> Verdict: ...


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


class SmallGroup:
    """A statistic of fewer than threshold records is suppressed."""

    def decide(self, cells: Cells, policy: Policy) -> Verdict:
        n = np.asarray(pd.DataFrame(cells.n).fillna(0), dtype=float).reshape(np.shape(cells.values))
        hidden = (n < policy.threshold) & ~np.asarray(pd.isna(cells.values))
        count = int(hidden.sum())
        note = f"{_plural(count, 'value')} suppressed: fewer than {policy.threshold} records" if count else ""
        return Verdict(hidden, note=note)


class RateBand:
    """Rates of groups under ``rate_band_below`` records outside ``rate_band`` are coded."""

    def decide(self, cells: Cells, policy: Policy) -> Verdict:
        shape = np.shape(cells.values)
        rate = np.broadcast_to(np.asarray(cells.rate, dtype=bool).reshape(-1 if np.ndim(cells.rate) else ()), shape)
        if not rate.any():
            return Verdict(np.zeros(shape, dtype=bool))
        low, high = (bound / 100 for bound in policy.rate_band)
        values = np.asarray(pd.DataFrame(cells.values).astype(float), dtype=float).reshape(shape)
        n = np.asarray(pd.DataFrame(cells.n).fillna(0), dtype=float).reshape(shape)
        small = rate & (n < policy.rate_band_below)
        below, above = small & (values < low), small & (values > high)
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
    """Magnitude cells dominated by their largest contributions (NK and p% rules)."""

    def decide(self, cells: Cells, policy: Policy) -> Verdict:
        shape = np.shape(cells.values)
        if cells.totals is None or not cells.tops:
            return Verdict(np.zeros(shape, dtype=bool))

        def array(table: Table) -> np.ndarray:
            return np.asarray(pd.DataFrame(table).fillna(0), dtype=float).reshape(shape)

        total = array(cells.totals)
        tops = [array(top) for top in cells.tops]
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


RULES: list[Rule] = [SmallGroup(), RateBand(), Dominance()]


def judge(cells: Cells, policy: Policy, rules: list[Rule] = RULES) -> tuple[Table, dict, str]:
    """Apply every rule: (the table with hidden cells missing, codes for shown text, the reason)."""
    hidden = np.zeros(np.shape(cells.values), dtype=bool)
    codes: dict = {}
    notes = []
    for rule in rules:
        verdict = rule.decide(cells, policy)
        fresh = verdict.hidden & ~hidden
        if fresh.any():
            notes.append(verdict.note)
            codes.update({k: v for k, v in verdict.codes.items()})
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
    """The ``keep`` largest values and the total of each group (groups numbered 0..count-1)."""
    frame = pd.DataFrame({"group": groups, "value": pd.to_numeric(values, errors="coerce").to_numpy()})
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
