"""One linear system for every count table shown over the same records, however they overlap.

Tables over one record set (a loaded table: all its rows, or subsets of them — a mask, a
query, one college's rows) are linked: an attacker who has seen several of them solves one
linear program over all their cells. The finest cells of that program would be the
combinations of every variable of every table, which grows as their product. Instead the
variables are grouped into the cliques of a triangulated graph (every table's variables lie
in one clique); each clique has its own atoms, and neighbouring cliques of a junction tree
agree on their shared margins (consistency rows: value 0, coefficients +1 and −1). For linear
programs this loses nothing: consistent margins of a decomposable model always extend to a
full table (the junction-tree property), so the attacker's intervals are those of the full
joint table, at the size of its cliques.

Variables are the tables' dimensions (a category per record where a table showed it, "not
known" elsewhere) and, per subset, an indicator "in the subset". Besides the published cells
the attacker is taken to know what the records show of how variables determine each other:

- a subset is a function of the variables that determine it in the records (its mask, e.g.
  one college): the narrowest such set of variables known on every record, found by
  dropping the widest variables first (masks read few, narrow variables; a wide variable that
  happens to single the subset out is dropped while the rest still determines it);
- nested or disjoint subsets are so;
- a dimension that is a function of another (a grade band of the grade) is so;

and so the combinations that break these are known to be empty (the stronger attacker, so
the safer side).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from output_filters.engine.linear_system import Atoms, Dimension, LinearSystem, TableCells, table_cells

CellKey = tuple[int | None, tuple[tuple[int, int], ...]]  # (subset indicator, ((variable, code), ...))


class ModelTooLarge(ValueError):
    """The linked tables need a clique with more atoms than the ledger may build."""


@dataclass(frozen=True)
class Variable:
    """A variable of the records: a code per record (-1 where not known), or a subset indicator (0/1)."""

    name: str
    categories: tuple
    codes: np.ndarray
    indicator: bool = False

    @property
    def width(self) -> int:
        """Categories, plus one for "not known" when some record has no value."""
        return len(self.categories) + int(bool((self.codes < 0).any()))

    def full_codes(self) -> np.ndarray:
        return np.where(self.codes < 0, len(self.categories), self.codes).astype(np.int64)


@dataclass(frozen=True)
class TableSpec:
    """A count table: its variables in axis order, over the records of a subset (None: all),
    less those of another subset (``without``: a complement, or a difference of two subsets)."""

    variables: tuple[int, ...]
    subset: int | None
    without: int | None = None


@dataclass(frozen=True)
class Joint:
    """The linked system and where each table's cells are in it.

    ``tables[t]`` lays out table ``t``'s cells (``TableCells`` over its clique's atoms, axes in
    the spec's order after a leading subset slice); ``positions[t][i]`` is the system cell of
    its cell ``i``; ``keys[t][i]`` its canonical key.
    """

    system: LinearSystem
    tables: tuple[TableCells, ...]
    positions: tuple[np.ndarray, ...]
    keys: tuple[tuple[CellKey, ...], ...]
    cliques: tuple[tuple[int, ...], ...]
    sliced: tuple[bool, ...]  # whether table t has a leading subset slice


def build(variables: list[Variable], specs: list[TableSpec], max_atoms: int = 400_000) -> Joint:
    """The joint system of ``specs`` over ``variables`` (see the module docstring)."""
    variables, weights = compressed(variables)
    subsets = {x for s in specs for x in (s.subset, s.without) if x is not None}
    slices = {x: _slice(variables, x) for x in subsets}

    def cut_variables(spec: TableSpec) -> set[int]:
        return set(_slice_variables(slices.get(spec.subset))) | set(_slice_variables(slices.get(spec.without)))

    edges: list[tuple[frozenset[int], np.ndarray | None]] = []
    for spec in specs:
        edges.append((frozenset(spec.variables) | frozenset(cut_variables(spec)), None))
    used = sorted(set().union(*(edge for edge, _ in edges)))
    indicators = [v for v in used if variables[v].indicator]
    edges += _dependencies(variables, used, indicators)
    used = sorted(set().union(*(edge for edge, _ in edges)))
    if not used:  # only counts of every record: one clique over any variable holds them
        used = (
            [next(s.subset for s in specs if s.subset is not None)] if any(s.subset is not None for s in specs) else [0]
        )
    widths = {v: variables[v].width for v in used}
    cliques = _cliques(used, [edge for edge, _ in edges], widths)
    for clique in cliques:
        size = int(np.prod([widths[v] for v in clique]))
        if size > max_atoms:
            names = " × ".join(variables[v].name for v in clique)
            raise ModelTooLarge(f"the linked tables need {size:,} combinations of {names} (at most {max_atoms:,})")
    atoms = [_clique_atoms(variables, weights, clique, edges) for clique in cliques]
    offsets = np.cumsum([0] + [a.counts.size for a in atoms])
    n_atoms = int(offsets[-1])
    total = float(weights.sum())
    known_zero = (
        np.concatenate(
            [a.known_zero.ravel() if a.known_zero is not None else np.zeros(a.counts.size, bool) for a in atoms]
        )
        if atoms
        else np.zeros(0, bool)
    )

    rows: list[np.ndarray] = []  # global atom columns per system cell (coefficient 1)
    by_membership: dict[bytes, int] = {}
    tables, positions, keys, sliced = [], [], [], []
    for spec in specs:
        chosen = slices.get(spec.subset)
        needed = set(spec.variables) | cut_variables(spec)
        k = next(i for i, clique in enumerate(cliques) if needed <= set(clique)) if needed else 0
        template, membership = _table(atoms[k], spec, chosen, slices.get(spec.without))
        cells = np.empty(membership.shape[0], dtype=np.int64)
        for i in range(membership.shape[0]):
            columns = membership.indices[membership.indptr[i] : membership.indptr[i + 1]] + offsets[k]
            live = columns[~known_zero[columns]]
            signature = live.tobytes() if len(live) else b"zero:" + columns.tobytes()
            cell = by_membership.get(signature)
            if cell is None:
                cell = by_membership[signature] = len(rows)
                rows.append(columns)
            cells[i] = cell
        tables.append(template)
        positions.append(cells)
        keys.append(_cell_keys(template, spec))
        sliced.append(chosen is not None or spec.without is not None)
    consistency: list[tuple[np.ndarray, np.ndarray]] = []
    for a, b, shared in _junction_tree(cliques):
        for left, right in _margin_rows(atoms[a], atoms[b], cliques[a], cliques[b], shared):
            consistency.append((left + offsets[a], right + offsets[b]))
    n_cells = len(rows) + len(consistency)
    data, indices, indptr = [], [], [0]
    for columns in rows:
        indices.append(columns)
        data.append(np.ones(len(columns), dtype=np.int8))
        indptr.append(indptr[-1] + len(columns))
    for left, right in consistency:
        indices.append(np.concatenate([left, right]))
        data.append(np.concatenate([np.ones(len(left), np.int8), -np.ones(len(right), np.int8)]))
        indptr.append(indptr[-1] + len(left) + len(right))
    matrix = sp.csr_array(
        (
            np.concatenate(data) if data else np.zeros(0, np.int8),
            np.concatenate(indices) if indices else np.zeros(0, np.int64),
            np.asarray(indptr),
        ),
        shape=(n_cells, n_atoms),
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    atom_values = np.concatenate([a.counts.ravel() for a in atoms]).astype(float) if atoms else np.zeros(0)
    atom_upper = np.where(known_zero, 0.0, total)
    equations, seen = [], set()
    for table, cells in zip(tables, positions, strict=True):
        for total_cell, parts in table.equations:
            equation = (int(cells[total_cell]), tuple(sorted(int(cells[p]) for p in parts)))
            if equation[1] != (equation[0],) and equation not in seen:
                seen.add(equation)
                equations.append(equation)
    system = LinearSystem(matrix, atom_values, atom_upper, tuple(equations), tuple(tables), tuple(positions), total)
    return Joint(system, tuple(tables), tuple(positions), tuple(keys), tuple(cliques), tuple(sliced))


_ALL = "\x00All"  # margin label inside the ledger's tables (never a category: categories are codes)


def _name(variable: int) -> str:
    return f"v{variable}"


# How a table's subset is cut out of the atoms: None (every record), or (variables, allowed
# code combinations of them): the subset's mask as a function of table variables, or its
# indicator variable with (1,) allowed.
Slice = tuple[tuple[int, ...], frozenset[tuple[int, ...]]] | None


def _slice(variables: list[Variable], subset: int) -> Slice:
    indicator = variables[subset]
    inside = indicator.codes == 1
    if inside.all():
        return None
    full = [i for i, v in enumerate(variables) if not v.indicator and i != subset and bool((v.codes >= 0).all())]
    determining = _determining(variables, subset, full)
    if not determining:
        return (subset,), frozenset({(1,)})
    combos = np.stack([variables[v].full_codes()[inside] for v in determining], axis=1)
    return tuple(determining), frozenset(map(tuple, np.unique(combos, axis=0).tolist()))


def _slice_variables(chosen: Slice) -> tuple[int, ...]:
    return () if chosen is None else chosen[0]


def _table(atoms: Atoms, spec: TableSpec, chosen: Slice, without: Slice = None) -> tuple[TableCells, sp.csr_array]:
    """A table's layout (cells and equations over its own variables) and its cells' atoms: the
    atoms of its subset only (those whose cut variables take an allowed combination), less
    those of ``without``."""
    own = [Dimension(_name(v)) for v in spec.variables]
    if own:
        template = table_cells(atoms, own, margins_name=_ALL)
    else:  # a count of a subset's records: one cell, no equation
        whole = sp.csr_array(np.ones((1, atoms.counts.size), dtype=np.int8))
        template = TableCells("count", (), whole, (), np.ones(1, bool), _ALL)
    membership = template.membership.tocsr()
    if chosen is None and without is None:
        return template, membership
    inside = np.ones(atoms.counts.size, dtype=bool)
    if chosen is not None:
        inside &= _inside(atoms, chosen)
    if without is not None:
        inside &= ~_inside(atoms, without)
    sliced = sp.csr_array(membership.multiply(inside.astype(np.int8)[None, :]))
    sliced.eliminate_zeros()
    return template, sliced


def _inside(atoms: Atoms, chosen: Slice) -> np.ndarray:
    """The atoms whose cut variables take one of the slice's allowed combinations."""
    cut, allowed = chosen
    grid = np.indices(atoms.counts.shape).reshape(atoms.counts.ndim, -1)
    positions = [atoms.dimensions.index(_name(v)) for v in cut]
    widths = [atoms.counts.shape[p] for p in positions]
    codes = np.ravel_multi_index([grid[p] for p in positions], widths)
    wanted = np.array(sorted(allowed), dtype=np.int64).reshape(-1, len(cut))
    keep = (wanted < np.asarray(widths)).all(axis=1)  # a combination the clique has
    targets = np.ravel_multi_index(wanted[keep].T, widths) if keep.any() else np.zeros(0, dtype=np.int64)
    return np.isin(codes, targets)


def _cell_keys(table: TableCells, spec: TableSpec) -> tuple[CellKey, ...]:
    records = spec.subset if spec.without is None else ("virtual", spec.subset, spec.without)
    if not spec.variables:
        return ((records, ()),)
    labels = [list(axis.labels) for axis in table.axes]
    grid = np.array(np.meshgrid(*[np.arange(len(x)) for x in labels], indexing="ij")).reshape(len(labels), -1).T
    out = []
    for combination in grid:
        parts = tuple(
            sorted(
                (variable, int(labels[d][i]))
                for d, (variable, i) in enumerate(zip(spec.variables, combination, strict=True))
                if labels[d][i] != _ALL
            )
        )
        out.append((records, parts))
    return tuple(out)


def _dependencies(
    variables: list[Variable], used: list[int], indicators: list[int]
) -> list[tuple[frozenset[int], np.ndarray]]:
    """Hyperedges of what the records show of how variables determine each other, with the
    combinations they make impossible (a boolean array over the edge's variables, sorted)."""
    out = []
    plain = [v for v in used if not variables[v].indicator]
    for s in indicators:  # subsets no variable known on every record determines
        determining = _determining(variables, s, [v for v in used if v != s])
        if determining:
            out.append(_absent(variables, sorted({*determining, s})))
    for i, a in enumerate(indicators):
        for b in indicators[i + 1 :]:
            edge = _absent(variables, [a, b])
            if edge[1].any():
                out.append(edge)
    for i, a in enumerate(plain):
        for b in plain[i + 1 :]:
            if _is_function(variables, [a], b) or _is_function(variables, [b], a):
                edge = _absent(variables, [a, b])
                if edge[1].any():
                    out.append(edge)
    return [edge for edge in out if edge[1].any()]


_COMPRESSED: dict[tuple, tuple[list[Variable], np.ndarray, list[Variable]]] = {}


def compressed(variables: list[Variable]) -> tuple[list[Variable], np.ndarray]:
    """The variables over the distinct combinations of their codes, with how many records each has.

    Every question the model asks of the records — counts per combination, which combinations
    occur, what determines what — has the same answer on these as on the records, which may be
    a million rows. Remembered for the last few sets of variables (they do not change between
    the several models one decision builds).
    """
    if not variables:
        return variables, np.zeros(0)
    key = tuple((id(v), len(v.codes)) for v in variables)
    found = _COMPRESSED.get(key)
    if found is not None and all(a is b for a, b in zip(found[2], variables, strict=True)):
        return found[0], found[1]
    combined = np.zeros(len(variables[0].codes), dtype=np.int64)
    for variable in variables:
        combined = pd.factorize(combined * variable.width + variable.full_codes())[0].astype(np.int64)
    _, first, counts = np.unique(combined, return_index=True, return_counts=True)
    out = [Variable(v.name, v.categories, v.codes[first], v.indicator) for v in variables]
    weights = counts.astype(float)
    _COMPRESSED.clear()
    _COMPRESSED[key] = (out, weights, list(variables))
    return out, weights


def _joint_codes(variables: list[Variable], members: list[int]) -> np.ndarray:
    code = np.zeros(len(variables[members[0]].codes), dtype=np.int64)
    for v in members:
        code = pd.factorize(code * variables[v].width + variables[v].full_codes())[0].astype(np.int64)
    return code


def _is_function(variables: list[Variable], inputs: list[int], output: int) -> bool:
    if not inputs:
        return False
    key = _joint_codes(variables, inputs)
    pairs = np.unique(key * variables[output].width + variables[output].full_codes())
    return len(pairs) == len(np.unique(key))


def _determining(variables: list[Variable], target: int, candidates: list[int]) -> list[int]:
    """A small set of ``candidates`` of which ``target`` is a function in the records (or [])."""
    if not candidates or not _is_function(variables, candidates, target):
        return []
    chosen = list(candidates)
    # drop the widest first: the smallest determining sets keep the cliques small
    for v in sorted(candidates, key=lambda v: (-variables[v].width, v)):
        rest = [c for c in chosen if c != v]
        if rest and _is_function(variables, rest, target):
            chosen = rest
    return chosen


def _absent(variables: list[Variable], members: list[int]) -> tuple[frozenset[int], np.ndarray]:
    shape = tuple(variables[v].width for v in members)
    present = np.zeros(int(np.prod(shape)), dtype=bool)
    present[np.ravel_multi_index(tuple(variables[v].full_codes() for v in members), shape)] = True
    return frozenset(members), ~present.reshape(shape)


def _cliques(used: list[int], edges: list[frozenset[int]], widths: dict[int, int]) -> list[tuple[int, ...]]:
    """Maximal cliques of the triangulated graph (min-fill elimination, ties by size then index)."""
    neighbours = {v: set() for v in used}
    for edge in edges:
        for a in edge:
            neighbours[a] |= edge - {a}
    remaining = set(used)
    found: list[frozenset[int]] = []
    while remaining:

        def cost(v: int) -> tuple[int, int, int]:
            near = neighbours[v] & remaining
            fill = sum(1 for a in near for b in near if a < b and b not in neighbours[a])
            return fill, int(np.prod([widths[u] for u in near | {v}])), v

        v = min(remaining, key=cost)
        near = neighbours[v] & remaining
        for a in near:
            neighbours[a] |= near - {a}
        found.append(frozenset(near | {v}))
        remaining.remove(v)
    maximal = [c for c in found if not any(c < other for other in found)]
    unique = list(dict.fromkeys(maximal))
    return [tuple(sorted(c)) for c in unique]


def _junction_tree(cliques: list[tuple[int, ...]]) -> list[tuple[int, int, tuple[int, ...]]]:
    """Edges (a, b, separator) of a maximum-weight spanning tree over the cliques (Kruskal)."""
    pairs = sorted(
        ((-len(set(a) & set(b)), i, j) for i, a in enumerate(cliques) for j, b in enumerate(cliques) if i < j)
    )
    parent = list(range(len(cliques)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    tree = []
    for _weight, i, j in pairs:
        if root(i) != root(j):
            parent[root(i)] = root(j)
            tree.append((i, j, tuple(sorted(set(cliques[i]) & set(cliques[j])))))
    return tree


def _clique_atoms(
    variables: list[Variable],
    weights: np.ndarray,
    clique: tuple[int, ...],
    edges: list[tuple[frozenset[int], np.ndarray | None]],
) -> Atoms:
    shape = tuple(variables[v].width for v in clique)
    flat = np.ravel_multi_index(tuple(variables[v].full_codes() for v in clique), shape)
    counts = np.bincount(flat, weights=weights, minlength=int(np.prod(shape))).reshape(shape).astype(np.int64)
    zero = np.zeros(shape, dtype=bool)
    for members, absent in edges:
        if absent is None or not members <= set(clique):
            continue
        order = sorted(members)
        view = [1] * len(clique)
        for v in order:
            view[clique.index(v)] = variables[v].width
        # absent is laid out in sorted(members) order, which is clique order too (cliques are sorted)
        zero |= np.broadcast_to(absent.reshape(view), shape)
    zero &= counts == 0
    categories = tuple(pd.Index(range(variables[v].width), name=_name(v)) for v in clique)
    return Atoms(tuple(_name(v) for v in clique), categories, counts, zero if zero.any() else None)


def _margin_rows(
    left: Atoms, right: Atoms, left_vars: tuple[int, ...], right_vars: tuple[int, ...], shared: tuple[int, ...]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each combination of the shared variables: its atoms in each clique (local columns)."""

    def groups(atoms: Atoms, members: tuple[int, ...]) -> dict[tuple, np.ndarray]:
        grid = np.indices(atoms.counts.shape).reshape(len(members), -1)
        if not shared:
            return {(): np.arange(grid.shape[1], dtype=np.int64)}
        widths = [atoms.counts.shape[members.index(v)] for v in shared]
        keys = np.ravel_multi_index([grid[members.index(v)] for v in shared], widths)
        order = np.argsort(keys, kind="stable")
        unique, starts = np.unique(keys[order], return_index=True)
        ends = np.append(starts[1:], len(order))
        return {
            tuple(int(c) for c in np.unravel_index(key, widths)): order[a:b]
            for key, a, b in zip(unique.tolist(), starts, ends, strict=True)
        }

    a, b = groups(left, left_vars), groups(right, right_vars)
    return [(a[key], b[key]) for key in sorted(a) if key in b]
