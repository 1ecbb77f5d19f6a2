"""An attacker written apart from the filter: one linear program over everything a session showed.

The filter's engine is not used here. The unknowns are the counts of records per
combination of every column any output used (the full product of their categories, each in
[0, number of records]); each output is a count table over the records a mask selects (a
predicate on those columns) with every margin; a published cell is an equality. For every
suppressed cell of 1–9 records (in any output) scipy's HiGHS minimizes and maximizes it. It
leaks if

- with the a-priori bounds only (Tau-Argus' attacker) its interval does not reach
  max(1, 30 % of the value) below and above it (``strict``; otherwise: on neither side), or
- knowing besides that every suppressed cell holds at least one record (zeros are shown), the
  attacker pins it down exactly.

Not strict is the measure for a whole session shown table by table: a later table cannot hide
a total an earlier one showed, so a small cell under a shown total of 10 keeps less room above
it than 30 %; it must never be pinned down, nor narrowed on both sides.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linprog

ALL = "All"


@dataclass
class Output:
    """One published count table: its dimensions (columns), its mask, and what it showed.

    ``shown`` maps a label tuple (one label per dimension, ``"All"`` for a margin) to the value
    shown, or None where the cell was suppressed; cells the output does not mention are not
    published.
    """

    dims: tuple[str, ...]
    shown: dict[tuple, float | None]
    mask: Callable[[pd.DataFrame], pd.Series] | None = None
    uses: tuple[str, ...] = ()  # the columns the mask reads
    name: str = ""


@dataclass
class Ratios:
    """Published shares or rates: each a count of the table over its denominator, both of one table.

    ``values`` maps a numerator label tuple to (denominator label tuple, the ratio shown, or
    None where suppressed). A shown ratio is the linear constraint numerator − ratio × denominator = 0.
    """

    dims: tuple[str, ...]
    values: dict[tuple, tuple[tuple, float | None]]
    mask: Callable[[pd.DataFrame], pd.Series] | None = None
    uses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Leak:
    output: str
    labels: tuple
    value: int
    low: float
    high: float


def leaks(
    records: pd.DataFrame,
    outputs: list[Output | Ratios],
    threshold: int = 10,
    interval: float = 0.3,
    strict: bool = True,
) -> list[Leak]:
    """Small suppressed cells an attacker narrows below their protection interval."""
    columns = sorted({d for o in outputs for d in o.dims} | {c for o in outputs for c in o.uses})
    categories = [sorted(pd.unique(records[c]), key=str) for c in columns]  # missing values are a category
    grid = pd.DataFrame(list(itertools.product(*categories)), columns=columns)
    codes = [
        pd.Index(c, dtype=object).get_indexer(records[name].astype(object))
        for c, name in zip(categories, columns, strict=True)
    ]
    shape = tuple(len(c) for c in categories)
    atoms = np.bincount(np.ravel_multi_index(codes, shape), minlength=int(np.prod(shape))).astype(float)
    total = float(len(records))
    rows, values, suppressed = [], [], []

    def member(output, labels) -> np.ndarray:
        inside = np.ones(len(grid), dtype=bool) if output.mask is None else np.array(output.mask(grid), dtype=bool)
        for dim, label in zip(output.dims, labels, strict=True):
            if label != ALL:
                inside &= (grid[dim] == label).to_numpy()
        return inside.astype(float)

    for output in outputs:
        if isinstance(output, Ratios):
            for labels, (denominator, ratio) in output.values.items():
                if ratio is not None:
                    rows.append(member(output, labels) - ratio * member(output, denominator))
                    values.append(0.0)
            continue
        for labels, shown in output.shown.items():
            row = member(output, labels)
            if shown is None:
                suppressed.append((output.name or " × ".join(output.dims), labels, row, float(row @ atoms)))
            else:
                rows.append(row)
                values.append(float(shown))
    a_eq = np.array(rows) if rows else None
    b_eq = np.array(values) if rows else None
    nonzero_ub = np.array([-row for *_, row, _ in suppressed]) if suppressed else None
    nonzero_b = -np.ones(len(suppressed)) if suppressed else None
    found, done = [], set()
    for name, labels, row, value in suppressed:
        if not 0 < value < threshold or row.tobytes() in done:
            continue
        done.add(row.tobytes())
        level = max(1, math.ceil(interval * value - 1e-9))
        low, high = _interval(row, a_eq, b_eq, None, None, total)
        exact_low, exact_high = _interval(row, a_eq, b_eq, nonzero_ub, nonzero_b, total)
        below, above = low > value - min(level, value) + 1e-6, high < value + min(level, total - value) - 1e-6
        narrow = (below or above) if strict else (below and above)
        exact = exact_high - exact_low < 1e-6
        if narrow or exact:
            found.append(Leak(name, labels, int(value), round(min(low, exact_low), 3), round(max(high, exact_high), 3)))
    return found


def _interval(row, a_eq, b_eq, a_ub, b_ub, total) -> tuple[float, float]:
    ends = []
    for sign in (1.0, -1.0):
        result = linprog(sign * row, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, total), method="highs")
        assert result.status == 0, f"the attacker's LP failed: {result.message}"
        ends.append(sign * result.fun)
    return ends[0], ends[1]


def shown_cells(table: pd.DataFrame | pd.Series, dims: tuple[str, ...], margins_name: str = ALL) -> dict:
    """A protected table as the attacker reads it: {labels: value or None}."""
    out: dict[tuple, float | None] = {}
    if isinstance(table, pd.DataFrame):
        for row, series in table.iterrows():
            for column, value in series.items():
                key = (*_flat(row), *_flat(column))
                out[_margins(key, margins_name)] = None if pd.isna(value) else float(value)
    else:
        for label, value in table.items():
            out[_margins(_flat(label), margins_name)] = None if pd.isna(value) else float(value)
    return {k: v for k, v in out.items() if len(k) == len(dims)}


def _flat(label) -> tuple:
    return label if isinstance(label, tuple) else (label,)


def _margins(key: tuple, margins_name: str) -> tuple:
    return tuple(ALL if k == margins_name or k == "" else k for k in key)
