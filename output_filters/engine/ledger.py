"""The session's ledger of count tables shown, so linked tables are protected together.

Two count tables over the same records that share a dimension share totals: school × grade,
then school × grade band; a crosstab, then the value_counts of one of its dimensions. Each
may be safe alone and still give a small cell away together (ANCHORS.md: 8–14 cells
recovered per table pair). The kernel keeps, for every count table it shows, the records'
dimension values and the cells it published; a new table over the same records (the same
row labels) that shares a dimension with earlier ones is checked by the attacker's linear
program over all of them at once. What was shown stays shown and what was suppressed stays
suppressed; if the joint audit fails, more cells of the new table are suppressed, smallest
first, and if even that cannot protect every small cell the new table is refused.

Tables over different rows (a subset, another filter) are not linked here; see the README.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from output_filters.engine.linear_system import ALL, Atoms, LinearSystem, TableCells, atoms_from_records, table_cells
from output_filters.engine.problem import Problem
from output_filters.exceptions import DisclosureError
from output_filters.policy import Policy

LINKED_REASON = (
    "together with count tables already shown in this kernel session, this table would let a "
    "small cell be recovered, and no suppression in it can prevent that; show a coarser table"
)
MAX_ENTRIES = 200


@dataclass
class Entry:
    rows: str  # fingerprint of the records' row labels
    names: tuple[str, ...]  # dimension names, in the table's axis order
    values: dict[str, pd.Series]  # the records' value of each dimension
    published: pd.DataFrame | pd.Series  # the full table with margins, NA where suppressed


def fingerprint(index: pd.Index) -> str:
    hashed = pd.util.hash_pandas_object(index, index=False).to_numpy()
    return hashlib.sha1(hashed.tobytes()).hexdigest() + f":{len(index)}"


class Ledger:
    def __init__(self, policy: Policy):
        self.policy = policy
        self.entries: list[Entry] = []

    def protect(self, dims: list[pd.Series], published: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
        """``published`` (the engine's full table for ``dims``), adjusted for linked tables."""
        names = _names(dims)
        values = dict(zip(names, dims, strict=True))
        rows = fingerprint(dims[0].index)
        linked = [e for e in self.entries if e.rows == rows and set(e.names) & set(names)]
        if linked:
            published = self._jointly(linked, names, values, published)
        self.entries.append(Entry(rows, tuple(names), values, published))
        del self.entries[:-MAX_ENTRIES]
        return published

    def _jointly(self, linked: list[Entry], names, values, published):
        union: dict[str, pd.Series] = {}
        for entry in [*linked, Entry("", tuple(names), values, published)]:
            union.update(entry.values)
        frame = pd.DataFrame(union)
        atoms = _with_dependencies(atoms_from_records(frame, list(union)))
        tables = [table_cells(atoms, list(entry.names)) for entry in linked]
        new = table_cells(atoms, list(names))
        system = LinearSystem.link(atoms, [*tables, new])
        suppressed = np.ones(system.n_cells, dtype=bool)
        for entry, table, position in zip(linked, tables, system.positions[:-1], strict=True):
            suppressed[position[_shown(table, entry.published)]] = False
        known = ~suppressed.copy()
        new_position = system.positions[-1]
        shown_new = _shown(new, published)
        suppressed[new_position[shown_new]] = False
        problem = Problem(system, self.policy.threshold, self.policy.protection_interval, self.policy.show_zeros)
        values_by_cell = system.cell_values
        while problem.audit(suppressed, first=True):
            candidates = [
                cell for cell in new_position if not suppressed[cell] and not known[cell] and values_by_cell[cell] > 0
            ]
            if not candidates:
                raise DisclosureError(LINKED_REASON)
            suppressed[min(candidates, key=lambda cell: values_by_cell[cell])] = True
        return _published_like(new, published, suppressed[new_position])


def _with_dependencies(atoms: Atoms) -> Atoms:
    """Atoms whose impossible combinations are known zeros, where one dimension determines another.

    A grade band is a function of the grade: an attacker knows no record has grade 7 in band
    9-10. Wherever the records show one dimension determining another, the combinations that
    break it are taken to be known to be empty (the stronger attacker, so the safer side).
    """
    counts = atoms.counts
    known_zero = np.zeros(counts.shape, dtype=bool)
    for i in range(counts.ndim):
        for j in range(counts.ndim):
            if i == j:
                continue
            low, high = min(i, j), max(i, j)
            pair = counts.sum(axis=tuple(k for k in range(counts.ndim) if k not in (i, j))) > 0  # axes (low, high)
            rows = pair if i < j else pair.T  # rows: dimension i
            if rows.sum(axis=1).max(initial=0) <= 1:  # each value of i goes with one value of j
                shape = [1] * counts.ndim
                shape[low], shape[high] = counts.shape[low], counts.shape[high]
                known_zero |= ~np.broadcast_to(pair.reshape(shape), counts.shape)
    known_zero &= counts == 0
    if not known_zero.any():
        return atoms
    return Atoms(atoms.dimensions, atoms.categories, counts, known_zero)


def _names(dims: list[pd.Series]) -> list[str]:
    names, seen = [], set()
    for number, series in enumerate(dims):
        name = str(series.name) if series.name is not None else f"dimension {number}"
        while name in seen:
            name += "'"
        seen.add(name)
        names.append(name)
    return names


def _positions(table: TableCells, published) -> pd.DataFrame | pd.Series:
    """The table's local cell numbers laid out like ``published``."""
    as_frame = isinstance(published, pd.DataFrame)
    return table.to_pandas(np.arange(table.membership.shape[0]), as_frame)


def _shown(table: TableCells, published) -> np.ndarray:
    """Local cells of ``table`` that ``published`` shows (present and not missing)."""
    layout = _positions(table, published)
    shown = np.zeros(table.membership.shape[0], dtype=bool)
    flat_layout = layout.stack(future_stack=True) if isinstance(layout, pd.DataFrame) else layout
    flat_published = published.stack(future_stack=True) if isinstance(published, pd.DataFrame) else published
    flat_published = _relabelled(flat_published, flat_layout)
    for label, cell in flat_layout.items():
        if label in flat_published.index and pd.notna(flat_published[label]):
            shown[int(cell)] = True
    return shown


def _relabelled(published: pd.Series, layout: pd.Series) -> pd.Series:
    """The engine writes margins as ``All``; make sure labels compare equal across the two."""
    if published.index.nlevels == layout.index.nlevels:
        published = published.copy()
        published.index = published.index.set_names(layout.index.names)
    return published


def _published_like(table: TableCells, published, suppressed_local: np.ndarray):
    layout = _positions(table, published)
    hidden = layout.map(lambda cell: bool(suppressed_local[int(cell)]))
    hidden = hidden.reindex_like(published).fillna(False).astype(bool)
    return published.mask(hidden)


__all__ = ["ALL", "Ledger", "fingerprint"]
