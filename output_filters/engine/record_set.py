"""What the ledger keeps of one record set: its records, their variables, the tables shown, the decided cells.

``RecordSet`` holds the records seen (by id, sorted), a ``Variable`` per dimension shown (a
code per record, "not known" where no table showed it) and per subset (an indicator), the
``Entry`` of every table shown and the decision of every cell (a value, or NaN where
suppressed), keyed by ``(subset, ((variable, code), ...))``. A dimension with the same name as
a variable and the same values on the records both know is that variable. ``Publication`` is
what one table shows, looked up by its labels. The decisions are made by
``output_filters.engine.ledger``; the files are ``output_filters.engine.ledger_store``'s.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from output_filters.engine.joint import CellKey, TableSpec, Variable
from output_filters.engine.ledger_store import decode, encode

MAX_TABLES = 300  # tables kept per record set (the oldest are forgotten first)


class _Margin:
    """The label of a margin (a sum over an axis) in a ledger lookup."""

    def __repr__(self) -> str:
        return "MARGIN"


MARGIN = _Margin()


@dataclass
class Entry:
    """One count table shown: its subset, its variables in axis order, where it was shown."""

    subset: int
    variables: tuple[int, ...]
    origin: str
    at: str

    def same_table(self, subset: int, variables: tuple[int, ...]) -> bool:
        return self.subset == subset and sorted(self.variables) == sorted(variables)

    def described(self, since: str) -> str:
        """Where it was shown; with its date when it was shown before this kernel started."""
        return self.origin if self.at >= since else f"{self.origin} of an earlier session ({self.at[:16]} UTC)"


@dataclass
class Publication:
    """What a count table shows: a value (NaN: suppressed) for each combination of its labels."""

    variables: tuple[int, ...]
    categories: tuple[tuple, ...]  # per axis, the categories the record set knows
    values: dict[tuple, float]  # codes per axis (-1: margin) -> value, NaN where suppressed
    primary: dict[tuple, bool]
    linked: tuple[str, ...] = ()  # earlier outputs that made this table suppress more
    again: bool = False  # the same table was shown before

    def value(self, labels: tuple) -> float:
        """The published value of the cell with these labels (``MARGIN`` for a margin); 0 if none."""
        return self.values.get(self._codes(labels), 0.0)

    def is_primary(self, labels: tuple) -> bool:
        return self.primary.get(self._codes(labels), False)

    def _codes(self, labels: tuple) -> tuple:
        if not hasattr(self, "_lookup"):
            self._lookup = [{category_key(c): code for code, c in enumerate(cats)} for cats in self.categories]
        return tuple(
            -1 if label is MARGIN else lookup.get(category_key(label), -2)
            for lookup, label in zip(self._lookup, labels, strict=True)
        )


def category_key(value) -> tuple:
    """A hashable key under which equal categories meet (True is not 1; every missing value is one)."""
    if isinstance(value, bool | np.bool_):
        return ("b", bool(value))
    if value is None or value is pd.NA or value is pd.NaT:
        return ("missing",)
    if isinstance(value, float | np.floating) and np.isnan(value):
        return ("missing",)
    if isinstance(value, numbers.Number):
        return ("n", value)
    return ("o", value)


@dataclass
class RecordSet:
    """One record set's state: the records seen, their variables, the tables and decided cells."""

    name: str
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    variables: list[Variable] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    decided: dict[CellKey, float] = field(default_factory=dict)
    _recent: list = field(default_factory=list, repr=False, compare=False)  # (labels, positions) of late

    def add_records(self, labels: np.ndarray) -> np.ndarray:
        """Positions of ``labels`` among the records, adding new ones (variables: not known)."""
        labels = np.asarray(labels, dtype=np.int64)
        for seen, where in self._recent:  # the same records again (the usual case): no search
            if seen.shape == labels.shape and (seen is labels or np.array_equal(seen, labels)):
                return where
        where = np.searchsorted(self.ids, labels)
        known = where < len(self.ids)
        known[known] = self.ids[where[known]] == labels[known]
        if not known.all():
            merged = np.sort(np.concatenate([self.ids, labels[~known]]))
            merged = merged[np.concatenate([[True], merged[1:] != merged[:-1]])] if len(merged) else merged
            moved = np.searchsorted(merged, self.ids)
            grown = []
            for variable in self.variables:
                codes = np.full(len(merged), 0 if variable.indicator else -1, dtype=np.int32)
                codes[moved] = variable.codes
                grown.append(Variable(variable.name, variable.categories, codes, variable.indicator))
            self.ids, self.variables = merged, grown
            self._recent.clear()
            where = np.searchsorted(self.ids, labels)
        self._recent.insert(0, (labels, where))
        del self._recent[4:]
        return where

    def indicator(self, positions: np.ndarray) -> int:
        mask = np.zeros(len(self.ids), dtype=np.int32)
        mask[positions] = 1
        for index, variable in enumerate(self.variables):
            if variable.indicator and np.array_equal(variable.codes, mask):
                return index
        self.variables.append(Variable(f"subset {sum(v.indicator for v in self.variables) + 1}", (0, 1), mask, True))
        return len(self.variables) - 1

    def variable(self, name: str, positions: np.ndarray, values: np.ndarray) -> int:
        """The variable ``name`` with these values at these records (an existing one if they agree)."""
        for index, variable in enumerate(self.variables):
            if variable.indicator or variable.name.rstrip("'") != name:
                continue
            codes, categories = _codes_for(values, variable.categories)
            known = variable.codes[positions]
            seen = known >= 0
            if np.array_equal(known[seen], codes[seen]):
                merged = variable.codes.copy()
                merged[positions] = codes
                self.variables[index] = Variable(variable.name, categories, merged)
                return index
        taken = {v.name for v in self.variables}
        label = name
        while label in taken:
            label += "'"
        codes, categories = _codes_for(values, ())
        full = np.full(len(self.ids), -1, dtype=np.int32)
        full[positions] = codes
        self.variables.append(Variable(label, categories, full))
        return len(self.variables) - 1

    # ---- persistence ----------------------------------------------------------------------

    def document(self) -> tuple[dict, dict[str, np.ndarray]]:
        doc = {
            "variables": [
                {"name": v.name, "indicator": v.indicator, "categories": [encode(c) for c in v.categories]}
                for v in self.variables
            ],
            "entries": [[e.subset, list(e.variables), e.origin, e.at] for e in self.entries],
            "decided": [
                [s, [list(p) for p in parts], None if np.isnan(v) else v] for (s, parts), v in self.decided.items()
            ],
        }
        arrays = {"ids": self.ids, **{f"v{i}": v.codes for i, v in enumerate(self.variables)}}
        return doc, arrays

    @classmethod
    def from_document(cls, name: str, doc: dict, arrays: dict[str, np.ndarray]) -> RecordSet:
        variables = [
            Variable(
                v["name"], tuple(decode(c) for c in v["categories"]), arrays[f"v{i}"].astype(np.int32), v["indicator"]
            )
            for i, v in enumerate(doc["variables"])
        ]
        entries = [Entry(s, tuple(vs), origin, at) for s, vs, origin, at in doc["entries"]]
        decided = {
            (s, tuple(tuple(p) for p in parts)): (np.nan if v is None else float(v)) for s, parts, v in doc["decided"]
        }
        return cls(name, arrays["ids"].astype(np.int64), variables, entries, decided)

    def forget_oldest(self) -> None:
        """Keep the newest ``MAX_TABLES`` tables and the decisions they need."""
        if len(self.entries) <= MAX_TABLES:
            return
        self.entries = self.entries[-MAX_TABLES:]
        owners = {(e.subset, frozenset(e.variables)) for e in self.entries}
        self.decided = {
            key: value
            for key, value in self.decided.items()
            if any(key[0] == s and {v for v, _ in key[1]} <= vs for s, vs in owners)
        }


def _codes_for(values: np.ndarray, categories: tuple) -> tuple[np.ndarray, tuple]:
    """Codes of ``values`` in ``categories``, new categories appended (sorted, for determinism)."""
    local, uniques = pd.factorize(values if isinstance(values, pd.Series) else pd.Series(values), use_na_sentinel=False)
    uniques = list(uniques)
    known = {category_key(c): code for code, c in enumerate(categories)}
    fresh = [u for u in uniques if category_key(u) not in known]
    if fresh:
        try:
            fresh = sorted(fresh, key=_sort_key)
        except TypeError:
            fresh = sorted(fresh, key=str)
        for value in fresh:
            if category_key(value) not in known:
                known[category_key(value)] = len(categories)
                categories = (*categories, value)
    mapping = np.asarray([known[category_key(u)] for u in uniques], dtype=np.int32)
    return mapping[local] if len(local) else np.zeros(0, np.int32), tuple(categories)


def _sort_key(value):
    return (1, 0) if category_key(value) == ("missing",) else (0, value)


def _dense(records: RecordSet, spec: TableSpec) -> np.ndarray:
    """The table's counts as a dense array over its variables' codes (its subset's records only)."""
    inside = records.variables[spec.subset].codes == 1
    shape = tuple(len(records.variables[v].categories) + 1 for v in spec.variables)  # + "not known"
    if not spec.variables:
        return np.asarray(float(inside.sum()))
    codes = [records.variables[v].full_codes()[inside] for v in spec.variables]
    flat = np.ravel_multi_index(codes, shape) if codes else np.zeros(int(inside.sum()), dtype=np.int64)
    return np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape).astype(float)


def true_counts(records: RecordSet, spec: TableSpec) -> dict[tuple, float]:
    """Every cell's true count of a table (codes per axis, -1 for a margin), for the primary marks."""
    dense = _dense(records, spec)
    n = len(spec.variables)
    out: dict[tuple, float] = {(): float(dense.sum())}
    for mask in range(1 << n):
        kept = [i for i in range(n) if mask & (1 << i)]
        summed = dense.sum(axis=tuple(i for i in range(n) if i not in kept)) if n else dense
        for position in zip(*np.nonzero(summed), strict=True) if kept else [()]:
            full = [-1] * n
            for i, code in zip(kept, position, strict=True):
                full[i] = int(code)
            out[tuple(full)] = float(summed[position]) if kept else float(dense.sum())
    return out


def own_counts(records: RecordSet, spec: TableSpec) -> pd.DataFrame | pd.Series:
    """The table's inner counts, labelled by codes, in the canonical (sorted-category) order.

    Only categories its records have: a category that none of them has is not in the table.
    """
    dense = _dense(records, spec)
    n = len(spec.variables)
    present = []
    for axis, v in enumerate(spec.variables):
        totals = dense.sum(axis=tuple(i for i in range(n) if i != axis))
        order = _category_order(records.variables[v].categories)
        present.append([c for c in order if totals[c] > 0])
    block = dense[np.ix_(*present)]
    names = [f"a{i}" for i in range(n)]
    if n == 1:
        return pd.Series(block, index=pd.Index(present[0], name="a0")).astype(np.int64)
    if n == 2:
        return pd.DataFrame(
            block, index=pd.Index(present[0], name="a0"), columns=pd.Index(present[1], name="a1")
        ).astype(np.int64)
    index = pd.MultiIndex.from_product(present, names=names)
    return pd.Series(block.ravel(), index=index).astype(np.int64)


def _category_order(categories: tuple) -> list[int]:
    """Codes in the order of their categories (sorted as pandas sorts crosstab labels)."""
    try:
        return sorted(range(len(categories)), key=lambda c: _sort_key(categories[c]))
    except TypeError:
        return sorted(range(len(categories)), key=lambda c: str(categories[c]))
