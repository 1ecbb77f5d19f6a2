"""The ledger of count tables shown to one user, so linked tables are protected together.

An attacker — or an honest researcher comparing outputs — combines everything shown. The
ledger keeps, per record set (a loaded table; ``kernels.marks`` says which rows are which),
every count table shown over it: the records' subset it counted (all of them, a mask, one
college), its variables, and each published cell's decision. Tables are linked by the
records they count, not by their labels: a table over a subset is the slice "in the
subset" of one more variable, so a difference of two subsets is in the joint audit
(``output_filters.engine.joint``).

A new table is decided so that:

- a table shown before (the same records and variables; with or without margins, in any
  rendering) comes back exactly as it was shown;
- a cell decided before keeps its decision (what was hidden stays hidden, what was shown
  stays shown);
- the table's own pattern — what ``protect`` gives it alone, a pure function of its counts
  and labels — is kept, and only if the joint audit fails are more of its own cells
  suppressed (margins included);
- it is refused only when no pattern of its own cells can protect; the error names the
  earlier output it conflicts with.

The state lives in ``output_filters.engine.ledger_store`` between kernels.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from output_filters.engine import joint as joint_model
from output_filters.engine.attack import Attacker
from output_filters.engine.joint import CellKey, TableSpec, Variable
from output_filters.engine.ledger_store import LedgerStore, decode, encode
from output_filters.engine.linear_system import ALL
from output_filters.engine.linked import decide
from output_filters.engine.secondary import protect
from output_filters.exceptions import DisclosureError
from output_filters.policy import Policy

Dim = tuple[Hashable, np.ndarray, np.ndarray]  # (name, record ids, values)
MAX_TABLES = 300  # tables kept per record set (the oldest are forgotten first)
MAX_RECORD_SETS = 40
TOLERANCE = 1e-6


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


class Ledger:
    """The ledger of one user's count tables (see the module docstring)."""

    def __init__(
        self, policy: Policy, store: LedgerStore | None = None, origin: Callable[[], str] | None = None
    ) -> None:
        self.policy = policy
        self.store = store
        self.origin = origin or (lambda: "an earlier cell")
        self.sets: dict[str, RecordSet] = {}
        self._stamps: dict[str, tuple[int, int] | None] = {}
        self.started = datetime.now(UTC).isoformat(timespec="seconds")

    def publish(self, universe: str, labels: np.ndarray, dims: list[Dim]) -> Publication:
        """Decide the count table of ``dims`` over the records ``labels`` of record set ``universe``.

        Each dimension is (name, record ids, values): its value on those records, which may be
        more than the records counted (a column of the loaded frame, on all its rows). Raises
        ``DisclosureError`` when no pattern of the table's own cells can protect.
        """
        if self.store is None:
            return self._publish(self._set(universe), labels, dims)
        with self.store.locked(universe):
            records = self._set(universe)
            publication = self._publish(records, labels, dims)
            if not publication.again:
                self._save(records)
            return publication

    # ---- state --------------------------------------------------------------------------

    def _set(self, universe: str) -> RecordSet:
        if self.store is not None:
            stamp = self.store.stamp(universe)
            if universe not in self.sets or stamp != self._stamps.get(universe):
                loaded = self.store.load(universe)
                if loaded is not None:
                    self.sets[universe] = RecordSet.from_document(universe, *loaded)
                self._stamps[universe] = stamp
        return self.sets.setdefault(universe, RecordSet(universe))

    def _save(self, records: RecordSet) -> None:
        records.forget_oldest()
        if self.store.save(records.name, *records.document()):
            self._stamps[records.name] = self.store.stamp(records.name)
            kept = self.store.universes()
            for _mtime, path in kept[: max(0, len(kept) - MAX_RECORD_SETS)]:
                self.store.forget(path)

    # ---- deciding -----------------------------------------------------------------------

    def _publish(self, records: RecordSet, labels: np.ndarray, dims: list[Dim]) -> Publication:
        arrays = {id(ids): ids for _name, ids, _values in dims} | {id(labels): labels}
        for ids in arrays.values():
            records.add_records(ids)
        positions = {key: records.add_records(ids) for key, ids in arrays.items()}  # the records are in now
        subset = records.indicator(positions[id(labels)])
        variables = tuple(
            records.variable(_dimension_name(name, number), positions[id(ids)], values)
            for number, (name, ids, values) in enumerate(dims)
        )
        if len(set(variables)) != len(variables):
            raise DisclosureError(
                "a count table with the same variable on two axes is its one-way table; use value_counts()",
                rule="count",
            )
        spec = TableSpec(variables, subset)
        for entry in records.entries:
            if entry.same_table(subset, variables):
                return self._publication(records, spec, again=True)
        decision = self._decide(records, spec)
        if decision.refusal is not None:
            raise DisclosureError(
                decision.refusal + self._coarser(records, spec),
                rule="linked tables",
                conflicts_with=decision.links,
            )
        model, new = decision.model, len(records.entries)
        values = model.system.cell_values
        for key, cell in zip(model.keys[new], model.positions[new], strict=True):
            records.decided[key] = float("nan") if decision.suppressed[cell] else float(values[cell])
        records.entries.append(Entry(subset, variables, self.origin(), datetime.now(UTC).isoformat(timespec="seconds")))
        return self._publication(records, spec, linked=decision.links if decision.extra else ())

    def _decide(self, records: RecordSet, spec: TableSpec) -> _Decision:
        """The pattern of a new table (nothing recorded yet)."""
        others = [TableSpec(e.variables, e.subset) for e in records.entries]
        implied = _implied(records, [*others, spec])
        try:
            model = joint_model.build(records.variables, [*others, spec, *implied])
        except joint_model.ModelTooLarge as error:
            return _Decision(
                None,
                np.zeros(0, bool),
                False,
                (),
                f"this table cannot be checked against the {len(others)} count tables shown before over the "
                f"same records: {error}",
            )
        new = len(others)
        cells = model.positions[new]
        shown, hidden = _decided(records, model)
        free = np.zeros(model.system.n_cells, dtype=bool)
        free[cells] = True
        free &= ~shown & ~hidden
        if not free.any():  # every cell was decided before: nothing new is published
            return _Decision(model, hidden, False, ())
        unpublished = np.zeros(model.system.n_cells, dtype=bool)
        for cells_of_implied in model.positions[new + 1 :]:
            unpublished[cells_of_implied] = True
        for cells_of_real in model.positions[: new + 1]:
            unpublished[cells_of_real] = False
        own = self._own_pattern(records, spec, model, new)
        suppressed, relaxed = decide(model.system, self.policy, shown, hidden | (own & free), unpublished)
        judge = _Relaxations(model.system, suppressed, free, hidden, unpublished) if relaxed else None
        for requirement in relaxed:
            if not judge.acceptable(requirement.cell, requirement.maximize):
                culprits = _culprits(records, model, new, judge.last, self.started)
                links = culprits or self._links(records, spec)
                return _Decision(model, suppressed, True, links, _refusal(records, model, requirement.cell, new, links))
        extra = bool((suppressed[cells] & ~own[cells] & free[cells]).any())
        return _Decision(model, suppressed, extra, self._links(records, spec) if extra else ())

    def _own_pattern(self, records: RecordSet, spec: TableSpec, model: joint_model.Joint, new: int) -> np.ndarray:
        """The cells the table's own protection suppresses (``protect`` of its counts alone)."""
        suppressed = np.zeros(model.system.n_cells, dtype=bool)
        if not spec.variables:  # a count of a subset: hidden only if it is small
            cell = model.positions[new][0]
            suppressed[cell] = 0 < model.system.cell_values[cell] < self.policy.threshold
            return suppressed
        counts = _own_counts(records, spec)
        hidden_labels = {_flat(label) for label in _suppressed_labels(protect(counts, self.policy).table)}
        for key, cell in zip(model.keys[new], model.positions[new], strict=True):
            present = dict(key[1])
            if tuple(present.get(v, ALL) for v in spec.variables) in hidden_labels:
                suppressed[cell] = True
        return suppressed

    def _coarser(self, records: RecordSet, spec: TableSpec) -> str:
        """A suggestion: the same table without one of its variables, if that would pass."""
        if len(spec.variables) < 2:
            return ""
        for dropped in reversed(spec.variables):
            kept = tuple(v for v in spec.variables if v != dropped)
            candidate = TableSpec(kept, spec.subset)
            if (
                any(e.same_table(spec.subset, kept) for e in records.entries)
                or self._decide(records, candidate).refusal is None
            ):
                names = " × ".join(records.variables[v].name for v in kept)
                return (
                    f"; a coarser table would pass, e.g. by {names} alone (without {records.variables[dropped].name})"
                )
        return "; show a coarser table (fewer dimensions, or small categories grouped)"

    def _links(self, records: RecordSet, spec: TableSpec) -> tuple[str, ...]:
        """Earlier outputs over the same records that share a variable or count another subset."""
        related = [
            e.described(self.started)
            for e in records.entries
            if set(e.variables) & set(spec.variables) or e.subset != spec.subset
        ]
        return tuple(dict.fromkeys(reversed(related)))[:3]

    def _publication(self, records: RecordSet, spec: TableSpec, *, again: bool = False, linked=()) -> Publication:
        categories = tuple(records.variables[v].categories for v in spec.variables)
        values: dict[tuple, float] = {}
        for (subset, parts), value in records.decided.items():
            if subset != spec.subset:
                continue
            present = dict(parts)
            if set(present) <= set(spec.variables):
                values[tuple(present.get(v, -1) for v in spec.variables)] = value
        threshold = self.policy.threshold
        primary = {codes: 0 < n < threshold for codes, n in _true_counts(records, spec).items()}
        return Publication(spec.variables, categories, values, primary, tuple(linked), again)


class _Relaxations:
    """Whether a requirement no pattern of the new table can meet may still be published.

    It may when the new table does not let the attacker narrow the cell further than the
    earlier outputs already did (its own cells unpublished; e.g. a cell whose parent total was
    shown caps it from above), leaving aside that suppressed cells are known to be at least 1
    when zeros are shown (a small cell whose parts are all suppressed is at least their number:
    that cannot be helped) — and the cell is not pinned down exactly. Otherwise the table is
    refused.
    """

    def __init__(self, system, suppressed: np.ndarray, free: np.ndarray, hidden: np.ndarray, unpublished) -> None:
        self.after = Attacker(system, system.cell_values, 0.0)
        self.after.set_pattern(suppressed)
        published = system.cell_values.copy()
        published[free] = np.nan
        self.before = Attacker(system, published, 0.0)
        self.before.set_pattern((hidden | unpublished) & ~free)
        self.floored = Attacker(system, system.cell_values, np.where(unpublished, 0.0, 1.0))
        self.floored.set_pattern(suppressed)

    def acceptable(self, cell: int, maximize: bool) -> bool:
        self.last = self.after.extreme(cell, maximize)
        now = self.last.value
        earlier = self.before.extreme(cell, maximize).value
        if (now < earlier - TOLERANCE) if maximize else (now > earlier + TOLERANCE):
            return False
        low, high = self.floored.interval(cell)
        return high - low > TOLERANCE


@dataclass
class _Decision:
    model: joint_model.Joint | None
    suppressed: np.ndarray
    extra: bool  # more cells than the table's own protection
    links: tuple[str, ...]
    refusal: str | None = None


def _implied(records: RecordSet, specs: list[TableSpec]) -> list[TableSpec]:
    """The tables the shown ones imply, by the same variables: a subset's complement (a table over
    all records less one over the subset) and the difference of a subset and a larger one — each
    only where both of its tables have been shown by those variables (or more), since otherwise
    the attacker cannot subtract. Their cells are never shown, but their small ones are protected."""
    inside = {s.subset: records.variables[s.subset].codes == 1 for s in specs}
    whole = {s for s, mask in inside.items() if mask.all()}
    by_subset: dict[int, list[frozenset[int]]] = {}
    for spec in specs:
        by_subset.setdefault(spec.subset, []).append(frozenset(spec.variables))

    def shown(subset: int, variables: tuple[int, ...]) -> bool:
        return any(set(variables) <= seen for seen in by_subset.get(subset, []))

    out: list[TableSpec] = []
    for spec in specs:
        if spec.subset in whole:
            continue
        if any(shown(w, spec.variables) for w in whole):
            out.append(TableSpec(spec.variables, None, spec.subset))
        small = inside[spec.subset]
        for big, mask in inside.items():
            if big in whole or big == spec.subset or not shown(big, spec.variables):
                continue
            if bool((small <= mask).all()) and mask.sum() > small.sum():
                out.append(TableSpec(spec.variables, big, spec.subset))
    return list(dict.fromkeys(out))


def _decided(records: RecordSet, model: joint_model.Joint) -> tuple[np.ndarray, np.ndarray]:
    """System cells published (shown) and suppressed (hidden) by earlier decisions."""
    shown = np.zeros(model.system.n_cells, dtype=bool)
    hidden = np.zeros(model.system.n_cells, dtype=bool)
    for keys, cells in zip(model.keys, model.positions, strict=True):
        for key, cell in zip(keys, cells, strict=True):
            value = records.decided.get(key)
            if value is not None:
                (hidden if np.isnan(value) else shown)[cell] = True
    return shown, hidden & ~shown


def _flat(label) -> tuple:
    return label if isinstance(label, tuple) else (label,)


def _dimension_name(name: Hashable, number: int) -> str:
    return str(name) if name is not None else f"dimension {number + 1}"


def _dense(records: RecordSet, spec: TableSpec) -> np.ndarray:
    """The table's counts as a dense array over its variables' codes (its subset's records only)."""
    inside = records.variables[spec.subset].codes == 1
    shape = tuple(len(records.variables[v].categories) + 1 for v in spec.variables)  # + "not known"
    if not spec.variables:
        return np.asarray(float(inside.sum()))
    codes = [records.variables[v].full_codes()[inside] for v in spec.variables]
    flat = np.ravel_multi_index(codes, shape) if codes else np.zeros(int(inside.sum()), dtype=np.int64)
    return np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape).astype(float)


def _true_counts(records: RecordSet, spec: TableSpec) -> dict[tuple, float]:
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


def _own_counts(records: RecordSet, spec: TableSpec) -> pd.DataFrame | pd.Series:
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


def _suppressed_labels(table: pd.DataFrame | pd.Series) -> list:
    if isinstance(table, pd.DataFrame):
        stacked = table.stack(future_stack=True)
        return [label for label, value in stacked.items() if pd.isna(value)]
    return [label for label, value in table.items() if pd.isna(value)]


def _cell_with_key(model: joint_model.Joint, key: CellKey) -> int:
    for table_keys, table_cells in zip(model.keys, model.positions, strict=True):
        for candidate, cell in zip(table_keys, table_cells, strict=True):
            if candidate == key:
                return int(cell)
    raise KeyError(key)


def _culprits(records: RecordSet, model: joint_model.Joint, new: int, extreme, since: str) -> tuple[str, ...]:
    """The earlier outputs whose cells bound the attacker's answer (non-zero duals of their rows)."""
    if extreme is None or not len(extreme.duals):
        return ()
    rows = np.flatnonzero(np.diff(model.system.matrix.indptr) != 1)  # the attacker's row cells
    binding = set(rows[np.abs(extreme.duals) > 1e-9].tolist())
    found = [
        e.described(since)
        for e, cells in zip(records.entries, model.positions[:new], strict=True)
        if binding & set(cells)
    ]
    return tuple(dict.fromkeys(reversed(found)))[:4]


def _describe(records: RecordSet, model: joint_model.Joint, cell: int) -> str:
    for keys, cells in zip(model.keys, model.positions, strict=True):
        for key, position in zip(keys, cells, strict=True):
            if position == cell and not isinstance(key[0], tuple):
                parts = ", ".join(
                    f"{records.variables[v].name} {records.variables[v].categories[c]!r}" for v, c in key[1]
                )
                return f" (the count of {parts})" if parts else " (a subset's count)"
    return ""


def _refusal(records: RecordSet, model: joint_model.Joint, cell: int, new: int, links: tuple[str, ...]) -> str:
    earlier = f"the tables of {', '.join(links)}" if links else "the count tables shown before over the same records"
    which = _describe(records, model, cell)
    return (
        f"together with {earlier}, this table would let a small cell be narrowed down{which}, "
        "and no suppression of this table's own cells prevents it"
    )
