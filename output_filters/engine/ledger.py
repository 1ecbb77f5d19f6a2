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

What it keeps of each record set is ``output_filters.engine.record_set``'s; the files, between
kernels, ``output_filters.engine.ledger_store``'s; the joint model, ``output_filters.engine.joint``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from output_filters.engine import joint as joint_model
from output_filters.engine.attack import Attacker
from output_filters.engine.joint import CellKey, TableSpec
from output_filters.engine.ledger_store import LedgerStore
from output_filters.engine.linear_system import ALL
from output_filters.engine.linked import decide
from output_filters.engine.record_set import (
    Entry,
    Publication,
    RecordSet,
    own_counts,
    true_counts,
)
from output_filters.engine.secondary import protect
from output_filters.exceptions import DisclosureError
from output_filters.policy import Policy

Dim = tuple[Hashable, np.ndarray, np.ndarray]  # (name, record ids, values)
MAX_RECORD_SETS = 40
TOLERANCE = 1e-6


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
        counts = own_counts(records, spec)
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
        primary = {codes: 0 < n < threshold for codes, n in true_counts(records, spec).items()}
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
