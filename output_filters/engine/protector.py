"""Which cells to add so that one small cell gets its room: the cheapest protection, by an LP.

The attacker's LP asks how far a suppressed cell can move with every published cell fixed.
The protector asks the converse: let every cell that may be suppressed move, charge each
published one for moving (its cost, spread over the room the small cell needs), and push
the small cell to its target. The published cells that move are a protection for that cell:
suppress them and the protector's table is one the attacker cannot rule out (every cell it
moves is suppressed, and it adds up), so the requirement holds. This is the linear
relaxation of the cheapest protection (as in the network-flow heuristics for 2-D tables,
here for any linear system), used to repair a pattern the master proposed.

Movement is split into up and down parts, so the LP also keeps it small: the table it
returns moves few cells, and stays a witness for many later patterns.
"""

from __future__ import annotations

import highspy
import numpy as np
import scipy.sparse as sp

from output_filters.engine.attack import new_highs
from output_filters.engine.problem import TOLERANCE, Problem

INF = highspy.kHighsInf
DRIFT = 1e-4  # what moving a cell that is already suppressed costs: keeps the table sparse


class Protector:
    """One LP model over the whole system; patterns change only its costs."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        system = problem.system
        matrix = sp.csr_array(system.matrix)
        n_cells, n_atoms = matrix.shape
        self.atoms = np.asarray(system.atom_values, dtype=float)
        values, floor, upper = problem.values, problem.attacker.floor, float(system.upper)
        sizes = np.diff(matrix.indptr)
        single = np.flatnonzero(sizes == 1)
        single = single[matrix.data[matrix.indptr[single]] == 1]
        own = np.full(n_atoms, -1, dtype=np.int64)
        own[matrix.indices[matrix.indptr[single]]] = single
        atom_upper = np.where(np.isfinite(system.atom_upper), system.atom_upper, upper)
        # an atom moves if it is a cell that may be suppressed, or no cell of its own
        movable = np.where(own >= 0, problem.suppressible[np.maximum(own, 0)], True) & (atom_upper > 0)
        self.free = np.flatnonzero(movable)
        cell_of = own[self.free]
        at = np.maximum(cell_of, 0)
        rise = np.where(cell_of >= 0, upper - values[at], atom_upper[self.free] - self.atoms[self.free])
        fall = np.where(cell_of >= 0, values[at] - floor[at], self.atoms[self.free])
        rows = np.setdiff1d(np.arange(n_cells), single)
        block = sp.csr_array(matrix[rows][:, self.free])
        touched = np.diff(block.indptr) > 0
        self.rows, block = rows[touched], sp.csr_array(block[touched])
        slack = problem.suppressible[self.rows]  # a total that may be suppressed may move
        self.slack_rows = np.flatnonzero(slack)
        k, m, s = len(self.free), len(self.rows), len(self.slack_rows)
        # columns: atom up, atom down, slack up, slack down; row i: A(up - down) - slack up + slack down = 0
        pick = sp.csr_array((np.ones(s), (self.slack_rows, np.arange(s))), shape=(m, s))
        columns = sp.hstack([block, -block, -pick, pick], format="csc")
        columns.sort_indices()
        row_values = values[self.rows[self.slack_rows]]
        lower = np.zeros(2 * k + 2 * s)
        upper_bounds = np.concatenate([rise, fall, upper - row_values, row_values - floor[self.rows[self.slack_rows]]])
        self.upper_bounds = np.maximum(upper_bounds, 0.0)
        # the cell each column moves (-1: an atom that is no cell), for costs and for reading
        self.column_cell = np.concatenate([cell_of, cell_of, self.rows[self.slack_rows], self.rows[self.slack_rows]])
        self.sign = np.concatenate([np.ones(k), -np.ones(k), np.ones(s), -np.ones(s)])
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = columns.shape[1], m
        lp.col_cost_ = np.zeros(columns.shape[1])
        lp.col_lower_ = lower
        lp.col_upper_ = self.upper_bounds.copy()
        lp.row_lower_ = np.zeros(m)
        lp.row_upper_ = np.zeros(m)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = columns.indptr.astype(np.int32)
        lp.a_matrix_.index_ = columns.indices.astype(np.int32)
        lp.a_matrix_.value_ = columns.data.astype(float)
        self._highs = new_highs()
        # each solve changes costs and bounds at once: dual simplex takes far fewer steps here
        self._highs.setOptionValue("simplex_strategy", 1)
        self._highs.passModel(lp)
        # the true table (nothing moves) is a vertex: each solve starts there, and walks only
        # as far as the protection needs (far fewer steps than from the last solve's answer)
        self._highs.run()
        self._truth = self._highs.getBasis()
        self.matrix = matrix
        self.solves = 0
        self.iterations = 0

    def protect(self, suppressed: np.ndarray, cell: int, target: float, maximize: bool) -> np.ndarray | None:
        """A table the attacker cannot rule out once its moved cells are suppressed, taking
        ``cell`` to ``target`` at the least cost of newly suppressed cells; None if none does."""
        problem = self.problem
        need = abs(target - problem.values[cell])
        if need <= TOLERANCE:
            return None
        n_columns = len(self.column_cell)
        cells = np.maximum(self.column_cell, 0)
        shown = (self.column_cell >= 0) & ~suppressed[cells]
        # moving a published cell by the need costs about that cell; the target is worth more
        cost = np.where(shown, problem.cost[cells] / need + DRIFT, DRIFT)
        direction = 1.0 if maximize else -1.0
        mine = np.flatnonzero((self.column_cell == cell) & (self.sign == direction))
        back = np.flatnonzero((self.column_cell == cell) & (self.sign == -direction))
        if not len(mine):
            return None
        # the net movement of the cell is what counts: its move the other way is charged back
        cost[mine] = -2.0 * (problem.system.n_cells + 1) / need
        cost[back] = 2.0 * (problem.system.n_cells + 1) / need
        upper = self.upper_bounds.copy()
        upper[mine] = np.minimum(upper[mine], need)
        every = np.arange(n_columns, dtype=np.int32)
        self._highs.changeColsCost(n_columns, every, cost)
        self._highs.changeColsBounds(n_columns, every, np.zeros(n_columns), upper)
        self._highs.setBasis(self._truth)
        self._highs.run()
        self.solves += 1
        self.iterations += max(int(self._highs.getInfo().simplex_iteration_count), 0)
        if self._highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        solution = np.asarray(self._highs.getSolution().col_value)
        k = len(self.free)
        atoms = self.atoms.copy()
        atoms[self.free] += solution[:k] - solution[k : 2 * k]
        table = np.asarray(self.matrix @ atoms, dtype=float)
        reached = table[cell] >= target - TOLERANCE if maximize else table[cell] <= target + TOLERANCE
        return table if reached else None
