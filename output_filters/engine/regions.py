"""Regions of a table for local certification: witnesses that a changed cell far away keeps.

A certifying LP (``Attacker.certify``) answers many requirements with one table, but that
table moves nearly every suppressed cell, so publishing any one of them again (a trial of
the search's pruning, the next answer of its master) makes it useless as a witness for all
of them, and the whole audit is solved again. The audit therefore first certifies the
requirements of each region of the table with every cell outside the region pinned at its
true value: that LP's tables are still ones the attacker cannot rule out (pinning only
removes tables), and they move cells of the region only, so a change elsewhere keeps them.
What a region cannot protect by itself is certified over the whole table, as before.

A region is a block of consecutive categories of the table's longest axis, with that axis'
total (a primary's room is usually found in its own block, or between it and the total).
This needs the system to be one table with all its margins and no hierarchy:
``Geometry.of`` checks the system's matrix against that shape exactly and gives ``None``
for any other system, which is then certified whole.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from output_filters.engine.linear_system import LinearSystem


class Geometry:
    """A system that is one full table with its margins: its cells on the table's grid."""

    def __init__(self, shape: tuple[int, ...], grid_cell: np.ndarray, margin: tuple[int, ...]) -> None:
        self.shape = shape  # the grid: each axis' categories and its total
        self.grid_cell = grid_cell  # the system cell of each grid slot (row-major)
        self.margin = margin  # the total's position on each axis

    @classmethod
    def of(cls, system: LinearSystem) -> Geometry | None:
        """The geometry of a one-table system whose matrix is exactly the full hypercube's."""
        if len(system.tables) != 1:
            return None
        table, local = system.tables[0], np.asarray(system.positions[0], dtype=np.int64)
        shape = table.shape
        if not shape or len(local) != system.n_cells or len(np.unique(local)) != len(local):
            return None
        margin = []
        for axis in table.axes:
            if len(axis.groups) != 1:
                return None
            total, parts = axis.groups[0]
            if sorted(parts) != sorted(set(range(len(axis.labels))) - {total}):
                return None
            margin.append(int(total))
        # the matrix such a table has: each slot is the sum of the inner slots it covers
        expected = sp.csr_array(np.ones((1, 1)))
        inner = []
        for n, m in zip(shape, margin, strict=True):
            others = [i for i in range(n) if i != m]
            part = np.zeros((n, n - 1))
            part[others, np.arange(n - 1)] = 1.0
            part[m, :] = 1.0
            expected = sp.kron(expected, sp.csr_array(part), format="csr")
            inner.append(others)
        inner_slots = np.ravel_multi_index(np.meshgrid(*inner, indexing="ij"), shape).ravel()
        matrix = sp.csr_array(system.matrix)
        if matrix.shape[1] != len(inner_slots):
            return None
        rows = sp.csr_array(matrix[local[inner_slots]])  # each inner slot: one atom, its own
        if np.any(np.diff(rows.indptr) != 1) or np.any(rows.data != 1):
            return None
        atom_of_inner = rows.indices
        if len(np.unique(atom_of_inner)) != len(atom_of_inner):
            return None
        if abs(sp.csr_array(matrix[local][:, atom_of_inner]) - expected).sum() > 0:
            return None
        return cls(tuple(shape), local, tuple(margin))

    def blocks(self, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The regions, as (region, members) masks over the system's cells: along the longest
        axis (the first of the longest), consecutive blocks of ``width`` categories; a block's
        members are the cells of its categories, its region those and the axis' total."""
        axis = int(np.argmax(self.shape))
        index = np.unravel_index(np.arange(len(self.grid_cell)), self.shape)[axis]
        categories = [i for i in range(self.shape[axis]) if i != self.margin[axis]]
        total = self.grid_cell[index == self.margin[axis]]
        out = []
        for first in range(0, len(categories), width):
            members = np.zeros(len(self.grid_cell), dtype=bool)
            members[self.grid_cell[np.isin(index, categories[first : first + width])]] = True
            region = members.copy()
            region[total] = True
            out.append((region, members))
        return out
