"""Published count tables as linear functions of their finest cells, for secondary suppression.

Every published count is a sum of *atoms*: the counts of the finest combinations of the
dimensions involved (one institution, one year, one ethnicity). A ``LinearSystem`` holds a
sparse 0/1 matrix A (cells × atoms) so that cell values = A @ atom counts, the additivity
relations of each table (a total and its parts), and where each table's cells sit. The
attacker's LPs and the suppression model (``output_filters.engine.secondary``) read nothing else,
so one table, a table with hierarchical subtotals and several linked tables are one case.

Building one, in the kernel:

    atoms = atoms_from_records(records, ["school", "grade"])
    by_grade = table_cells(atoms, ["school", "grade"])
    by_band = table_cells(atoms, ["school", Dimension("grade", recode=grade_band)])
    system = LinearSystem.link(atoms, [by_grade, by_band])

A table's axes each sum over one atom dimension (recoded, e.g. grade → grade band, and with
subtotals per parent, e.g. institution → segment); atom dimensions a table does not show are
summed over. Every table gets all its margins: a total at every level, ``All`` per axis and
every combination of totals (the full hypercube). A cell published by two tables (the school
totals of both tables above) is one cell of the system: it is shown or suppressed once.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

ALL = "All"


@dataclass(frozen=True)
class Dimension:
    """One axis of a published table, summing over one atom dimension.

    ``recode`` maps atom categories to the table's categories (grade → grade band); every
    atom category must be mapped. ``parents`` maps table categories to a parent category
    (institution → segment; parents may have parents) and adds a subtotal cell per parent
    that has a category in the table; categories without a parent roll up to ``All``.
    ``name`` is the axis name in the published table (default: ``column``). ``keep=(c,)``
    makes the axis a slice: one label, the atoms of category ``c`` only, and no margin (a
    table over a subset of the records is the slice "in the subset" of its indicator).
    """

    column: Hashable
    recode: Mapping[Hashable, Hashable] | None = None
    parents: Mapping[Hashable, Hashable] | None = None
    name: Hashable | None = None
    keep: tuple[Hashable] | None = None


@dataclass(frozen=True)
class Atoms:
    """The finest cells shared by linked tables: a dense array of counts over all dimensions.

    ``known_zero`` marks combinations the publication itself shows to be empty (a count
    Series that leaves them out); other zero combinations are unknown to an attacker.
    """

    dimensions: tuple[Hashable, ...]
    categories: tuple[pd.Index, ...]
    counts: np.ndarray
    known_zero: np.ndarray | None = None

    @property
    def total(self) -> int:
        return int(self.counts.sum())


@dataclass(frozen=True)
class Axis:
    """The labels of one table axis (categories, then parents, then ``All``) and their groups."""

    name: Hashable
    atom_dimension: int
    labels: pd.Index
    membership: np.ndarray  # labels × atom categories, 0/1
    groups: tuple[tuple[int, tuple[int, ...]], ...]  # (total label, its part labels)
    parents: tuple[int, ...] = ()  # positions of parent (subtotal) labels


@dataclass(frozen=True)
class TableCells:
    """One published table: its cells (all axis label combinations, row-major) as atom sums."""

    name: str
    axes: tuple[Axis, ...]
    membership: sp.csr_array  # cells × atoms
    equations: tuple[tuple[int, tuple[int, ...]], ...]  # (total cell, part cells), local
    present: np.ndarray  # cells to show (False: covers only known-zero combinations)
    margins_name: str = ALL

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(axis.labels) for axis in self.axes)

    def to_pandas(self, values: np.ndarray, as_frame: bool) -> pd.DataFrame | pd.Series:
        """Values (one per cell, row-major) as a DataFrame (2 axes) or a Series."""
        if as_frame and len(self.axes) == 2:
            rows, cols = self.axes
            return pd.DataFrame(values.reshape(self.shape), index=rows.labels, columns=cols.labels)
        if len(self.axes) == 1:
            index = self.axes[0].labels
        else:
            index = pd.MultiIndex.from_product([a.labels for a in self.axes], names=[a.name for a in self.axes])
        series = pd.Series(values, index=index)
        return series[self.present] if not self.present.all() else series


@dataclass(frozen=True)
class LinearSystem:
    """Unique published cells as sums of atoms, with the tables' additivity relations.

    ``positions[t][i]`` is the system cell of cell ``i`` of ``tables[t]``. ``atom_upper`` is
    the attacker's a-priori upper bound per atom (the grand total; 0 for known zeros).
    """

    matrix: sp.csr_array
    atom_values: np.ndarray | None
    atom_upper: np.ndarray
    equations: tuple[tuple[int, tuple[int, ...]], ...]
    tables: tuple[TableCells, ...]
    positions: tuple[np.ndarray, ...]
    upper: float = field(default=np.inf)

    @property
    def n_cells(self) -> int:
        return self.matrix.shape[0]

    @property
    def cell_values(self) -> np.ndarray:
        if self.atom_values is None:
            raise ValueError("this system was built from a published table and has no true values")
        return np.asarray(self.matrix @ self.atom_values, dtype=float)

    @classmethod
    def link(cls, atoms: Atoms, tables: Sequence[TableCells], upper: float | None = None) -> LinearSystem:
        """One system for tables over the same atoms; identical cells become one cell.

        ``upper`` is the attacker's a-priori bound on any cell (default: the grand total).
        """
        if not tables:
            raise ValueError("LinearSystem.link needs at least one table")
        n_atoms = atoms.counts.size
        for table in tables:
            if table.membership.shape[1] != n_atoms:
                raise ValueError(f"table {table.name!r} was built on other atoms; build every table from one Atoms")
        stacked = sp.vstack([t.membership for t in tables], format="csr")
        stacked.sort_indices()
        unique: dict[bytes, int] = {}
        first_rows: list[int] = []
        cell_of_row = np.empty(stacked.shape[0], dtype=np.int64)
        indptr, indices = stacked.indptr, stacked.indices
        for row in range(stacked.shape[0]):
            key = indices[indptr[row] : indptr[row + 1]].tobytes()
            cell = unique.setdefault(key, len(unique))
            if cell == len(first_rows):
                first_rows.append(row)
            cell_of_row[row] = cell
        matrix = sp.csr_array(stacked[first_rows])
        positions, equations, offset = [], [], 0
        seen: set[tuple[int, tuple[int, ...]]] = set()
        for table in tables:
            local = cell_of_row[offset : offset + table.membership.shape[0]]
            positions.append(local)
            offset += table.membership.shape[0]
            for total, parts in table.equations:
                equation = (int(local[total]), tuple(sorted(int(local[p]) for p in parts)))
                if equation[1] != (equation[0],) and equation not in seen:
                    seen.add(equation)
                    equations.append(equation)
        bound = float(atoms.total if upper is None else upper)
        atom_upper = np.full(n_atoms, bound)
        if atoms.known_zero is not None:
            atom_upper[atoms.known_zero.ravel()] = 0.0
        values = atoms.counts.ravel().astype(float)
        values = None if np.isnan(values).any() else values  # built from a published table
        return cls(matrix, values, atom_upper, tuple(equations), tuple(tables), tuple(positions), bound)


def atoms_from_records(frame: pd.DataFrame, dimensions: Sequence[Hashable]) -> Atoms:
    """Counts of records per combination of ``dimensions`` (all combinations, zeros included).

    Missing values are a category of their own, as pandas' ``dropna=False`` makes them.
    """
    dimensions = list(dimensions)
    if not dimensions:
        raise ValueError("atoms_from_records needs at least one dimension (a column of the records)")
    missing = [d for d in dimensions if d not in frame.columns]
    if missing:
        raise ValueError(f"atoms_from_records: no column {missing} in the records; columns: {list(frame.columns)}")
    codes, categories = [], []
    for name in dimensions:
        code, uniques = pd.factorize(frame[name], sort=True, use_na_sentinel=False)
        codes.append(code)
        categories.append(pd.Index(uniques, name=name))
    shape = tuple(len(c) for c in categories)
    counts = np.zeros(shape, dtype=np.int64)
    np.add.at(counts, tuple(codes), 1)
    return Atoms(tuple(dimensions), tuple(categories), counts)


def atoms_from_counts(counts: pd.DataFrame | pd.Series, values: np.ndarray | None = None) -> Atoms:
    """The atoms of one inner count table: its cells (a Series' absent combinations are zeros).

    A DataFrame's index and columns are the two dimensions; a Series' index levels are. The
    counts must already be validated (``output_filters.engine.secondary.validate_counts``).
    """
    if isinstance(counts, pd.DataFrame):
        rows = _axis_index(counts.index, "index")
        cols = _axis_index(counts.columns, "columns")
        if cols.name == rows.name:  # e.g. a crosstab of a column with itself
            cols = cols.rename(f"{cols.name} (columns)")
        dense = counts.to_numpy(dtype=float) if values is None else values
        return Atoms((rows.name, cols.name), (rows, cols), dense)
    index = counts.index
    if not isinstance(index, pd.MultiIndex):
        labels = _axis_index(index, "index")
        dense = counts.to_numpy(dtype=float) if values is None else values
        return Atoms((labels.name,), (labels,), dense)
    if index.has_duplicates:
        raise ValueError("the count Series has duplicate index entries; aggregate them first (groupby().sum())")
    categories, codes = [], []
    for level, name in enumerate(index.names):
        code, uniques = pd.factorize(index.get_level_values(level), use_na_sentinel=False)
        if name is None or name in index.names[:level]:  # unnamed or repeated: a name of its own
            name = f"level_{level}"
        categories.append(pd.Index(uniques, name=name))
        codes.append(code)
    shape = tuple(len(c) for c in categories)
    dense = np.zeros(shape, dtype=float)
    dense[tuple(codes)] = counts.to_numpy(dtype=float) if values is None else values
    known_zero = np.ones(shape, dtype=bool)
    known_zero[tuple(codes)] = False
    names = tuple(c.name for c in categories)
    return Atoms(names, tuple(categories), dense, known_zero if known_zero.any() else None)


def table_cells(
    atoms: Atoms,
    dimensions: Sequence[Hashable | Dimension],
    name: str | None = None,
    margins_name: str = ALL,
) -> TableCells:
    """The cells of one table over ``atoms``: its axes with all margins and subtotals."""
    specs = [d if isinstance(d, Dimension) else Dimension(d) for d in dimensions]
    if not specs:
        raise ValueError("table_cells needs at least one dimension")
    used = [_dimension_position(atoms, spec.column) for spec in specs]
    if len(set(used)) != len(used):
        raise ValueError(f"table {name!r}: each atom dimension may be used by one axis only, got {dimensions}")
    axes = tuple(_axis(atoms, spec, position, margins_name) for spec, position in zip(specs, used, strict=True))
    factors = []
    for position, categories in enumerate(atoms.categories):
        if position in used:
            factors.append(sp.csr_array(axes[used.index(position)].membership))
        else:
            factors.append(sp.csr_array(np.ones((1, len(categories)))))
    membership = factors[0]
    for factor in factors[1:]:
        membership = sp.kron(membership, factor, format="csr")
    # kron orders cells by atom dimension; reorder them to the table's axis order
    by_atoms = [len(axes[used.index(p)].labels) if p in used else 1 for p in range(len(atoms.categories))]
    grid = np.arange(int(np.prod(by_atoms))).reshape(by_atoms)
    order = [p for p in range(len(atoms.categories)) if p not in used]
    grid = grid.transpose(order + used).reshape([len(a.labels) for a in axes])
    membership = sp.csr_array(membership[grid.ravel()]).astype(np.int8)
    shape = tuple(len(a.labels) for a in axes)
    cells = np.arange(membership.shape[0]).reshape(shape)
    equations = []
    for d, axis in enumerate(axes):
        for total, parts in axis.groups:
            totals = np.take(cells, total, axis=d).ravel()
            pieces = np.stack([np.take(cells, p, axis=d).ravel() for p in parts], axis=1)
            equations.extend((int(t), tuple(int(c) for c in row)) for t, row in zip(totals, pieces, strict=True))
    if atoms.known_zero is None:
        present = np.ones(membership.shape[0], dtype=bool)
    else:
        present = np.asarray(membership @ (~atoms.known_zero.ravel()).astype(np.int64)) > 0
    title = name if name is not None else " × ".join(str(a.name) for a in axes)
    return TableCells(title, axes, membership, tuple(equations), present, margins_name)


def _dimension_position(atoms: Atoms, column: Hashable) -> int:
    for position, name in enumerate(atoms.dimensions):
        if name == column:
            return position
    raise ValueError(f"no atom dimension {column!r}; the atoms have {list(atoms.dimensions)}")


def _axis(atoms: Atoms, spec: Dimension, position: int, margins_name: str) -> Axis:
    source = atoms.categories[position]
    if spec.keep is not None:
        (kept,) = spec.keep
        membership = np.asarray([[1 if category == kept else 0 for category in source]], dtype=np.int8)
        name = spec.name if spec.name is not None else spec.column
        return Axis(name, position, pd.Index([kept], name=name, tupleize_cols=False), membership, ())
    if spec.recode is None:
        mapped = list(source)
    else:
        unmapped = [c for c in source if c not in spec.recode]
        if unmapped:
            raise ValueError(f"recode of {spec.column!r} does not map {unmapped[:5]}; give every category a group")
        mapped = [spec.recode[c] for c in source]
    base = list(dict.fromkeys(mapped))
    # entries for categories this table does not have are ignored: one consortium-wide
    # mapping (every institution → its segment) serves every table
    parent_of = dict(spec.parents or {})
    internal: list[Hashable] = []
    for label in base:
        seen = {label}
        while label in parent_of:
            label = parent_of[label]
            if label in seen:
                raise ValueError(f"hierarchy of {spec.column!r} has a cycle through {label!r}")
            seen.add(label)
            if label in base:
                raise ValueError(f"{label!r} is both a category and a parent in the hierarchy of {spec.column!r}")
            if label not in internal:
                internal.append(label)
    labels = base + internal
    if margins_name in labels:
        raise ValueError(f"{margins_name!r} is a category of {spec.column!r}; pass another margins_name")
    position_of = {label: i for i, label in enumerate(labels)}
    membership = np.zeros((len(labels) + 1, len(source)), dtype=np.int8)
    for atom_category, label in enumerate(mapped):
        node = label
        membership[position_of[node], atom_category] = 1
        while node in parent_of:
            node = parent_of[node]
            membership[position_of[node], atom_category] = 1
    membership[-1, :] = 1
    children: dict[int, list[int]] = {i: [] for i in range(len(labels) + 1)}
    for label in labels:
        parent = position_of[parent_of[label]] if label in parent_of else len(labels)
        children[parent].append(position_of[label])
    groups = tuple((total, tuple(parts)) for total, parts in children.items() if parts)
    name = spec.name if spec.name is not None else spec.column
    index = pd.Index(labels + [margins_name], name=name, tupleize_cols=False)
    parents = tuple(range(len(base), len(labels)))
    return Axis(name, position, index, membership, groups, parents)


def _axis_index(index: pd.Index, what: str) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        raise ValueError(
            f"the table's {what} is a MultiIndex; pass a Series with a MultiIndex for 3 or more dimensions"
        )
    if index.has_duplicates:
        raise ValueError(f"the table's {what} has duplicate labels {list(index[index.duplicated()][:5])}")
    return pd.Index(list(index), name=index.name if index.name is not None else what, tupleize_cols=False)
